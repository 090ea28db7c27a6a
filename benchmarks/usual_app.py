"""The usual way, written plainly: Hydra multirun, one MLflow run per job, log_params, and
mlflow.log_metric every epoch. A baseline for benchmarks/bench_sweeps.py, not part of sweeps."""

import hydra
import mlflow
import torch
from omegaconf import DictConfig, OmegaConf


@hydra.main(config_path="usual_conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    n = cfg.n_train + cfg.n_val
    x = 2 * torch.rand(n, 1, generator=g, dtype=torch.float64) - 1
    y = (0.8 * x + 0.5 + cfg.noise * torch.randn(n, 1, generator=g, dtype=torch.float64)).float()
    x = x.float()
    if cfg.model == "poly":
        feats = torch.cat([x**k for k in range(1, 10)], dim=1)
        model = torch.nn.Linear(9, 1)
    else:
        feats = x
        model = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    xt, yt, xv, yv = feats[: cfg.n_train], y[: cfg.n_train], feats[cfg.n_train :], y[cfg.n_train :]
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[cfg.optimizer](
        model.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.MSELoss()
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run():
        mlflow.log_params(OmegaConf.to_container(cfg))
        for epoch in range(cfg.epochs):
            if cfg.zero_grad:
                opt.zero_grad()
            loss = loss_fn(model(xt), yt)
            loss.backward()
            opt.step()
            with torch.no_grad():
                val = loss_fn(model(xv), yv)
            mlflow.log_metric("train_loss", loss.item(), step=epoch)
            mlflow.log_metric("val_loss", val.item(), step=epoch)
            if not torch.isfinite(loss):
                break
    return val.item()


if __name__ == "__main__":
    main()
