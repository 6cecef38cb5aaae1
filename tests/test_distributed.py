"""Tests for fieldseg_core.distributed: launch detection, seeds, DDP training on 2 CPU processes."""

import socket
import warnings

import pytest
import torch
import torch.multiprocessing as mp

from fieldseg_core.data import SyntheticCells
from fieldseg_core.distributed import (
    DataParallelRun,
    backend_for,
    launch_info,
    rank_seed,
    synchronise_batchnorm,
)
from fieldseg_core.models import TileSafeNorm, build_model
from fieldseg_core.train import CHECKPOINT, cosine_warmup_schedule, loss_for, train

WORLD, BATCH, EPOCHS, N_ITEMS, SEED = 2, 2, 2, 8, 3
DATA = dict(shape=(32, 32), n_cells_range=(2, 3), radius_range=(4, 6), augment=False, seed=5)


def _dataset():
    return SyntheticCells(N_ITEMS, "edt", **DATA)


def _gn_model():
    """Per-sample normalisation (GroupNorm)."""
    torch.manual_seed(0)
    return build_model("edt", widths=(4, 8), groups=2, norm="group")


def _bn_model():
    """The default U-Net: TileSafeNorm, batch statistics in training."""
    torch.manual_seed(0)
    return build_model("edt", widths=(4, 8))


def _frozen_model():
    """The default U-Net with frozen normalisation statistics (as when fine-tuning)."""
    model = _bn_model()
    for m in model.modules():
        if isinstance(m, TileSafeNorm):
            m.frozen = True
    return model


BUILDERS = {"gn": _gn_model, "bn": _bn_model, "frozen": _frozen_model}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, out):
    # The environment torchrun would give this process.
    env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    import os

    os.environ.update(env)
    torch.set_num_threads(1)
    run = DataParallelRun(torch.device("cpu"))        # creates the gloo group from the env
    result = {"backend": torch.distributed.get_backend()}
    for name, build in BUILDERS.items():
        model = build()
        if rank == 1:  # DDP must broadcast rank 0's weights at start
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = train(model, _dataset(), loss=loss_for("edt"), epochs=EPOCHS,
                            batch_size=BATCH, device="cpu", progress=False, seed=SEED,
                            out_dir=f"{out}/{name}_rank{rank}")
        result[name] = {k: v.clone() for k, v in model.state_dict().items()}
        result[name + "_loss"] = [row["train_loss"] for row in history]
    run.close()
    torch.save(result, f"{out}/rank{rank}.pt")


def _rank_batches(epoch, rank):
    sampler = torch.utils.data.distributed.DistributedSampler(
        range(N_ITEMS), num_replicas=WORLD, rank=rank, shuffle=True, seed=SEED)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    return [idx[i:i + BATCH] for i in range(0, len(idx), BATCH)]


def _reference(build, per_rank_forward, ranks=(0, 1)):
    """One process, AdamW + the same schedule, each step over the ranks' batches together."""
    ds = _dataset()
    model = build()
    loss = loss_for("edt")
    steps = EPOCHS * N_ITEMS // (WORLD * BATCH)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    sched = cosine_warmup_schedule(opt, max(1, round(0.05 * steps)), steps, 0.01)
    torch.manual_seed(SEED)
    for epoch in range(EPOCHS):
        per_rank = [_rank_batches(epoch, r) for r in ranks]
        for step_batches in zip(*per_rank):
            parts = [[ds[i] for i in b] for b in step_batches]
            xs = [torch.stack([p[0] for p in part]) for part in parts]
            ys = [torch.stack([p[1] for p in part]) for part in parts]
            opt.zero_grad()
            if per_rank_forward:  # unsynchronised batch statistics: each rank its own batch
                total = sum(loss(model(x), y, model) for x, y in zip(xs, ys)) / len(xs)
            else:                 # per-sample normalisation: one pass over the union
                total = loss(model(torch.cat(xs)), torch.cat(ys), model)
            total.backward()
            opt.step()
            sched.step()
    return model.state_dict()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_launch_info_reads_torchrun_environment():
    assert launch_info({}).launched is False
    assert launch_info({"RANK": "0", "WORLD_SIZE": "1"}).world_size == 1  # no rendezvous address
    env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h",
           "MASTER_PORT": "1"}
    info = launch_info(env)
    assert (info.rank, info.local_rank, info.world_size, info.launched) == (1, 1, 2, True)
    with pytest.raises(ValueError, match="RANK"):
        launch_info({**env, "RANK": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        launch_info({**env, "WORLD_SIZE": "two"})


def test_backend_and_seeds():
    assert backend_for(torch.device("cpu")) == "gloo" and backend_for("cuda:0") == "nccl"
    seeds = [rank_seed(11, r) for r in range(64)]
    assert seeds[0] == 11 and len(set(seeds)) == 64
    assert seeds == [rank_seed(11, r) for r in range(64)]
    with pytest.raises(ValueError, match="rank"):
        rank_seed(0, -1)


def test_inactive_run_is_identity():
    run = DataParallelRun(torch.device("cpu"), environ={})
    model = _gn_model()
    assert not run.active and run.is_main and run.wrap(model) is model
    assert run.shard_size(7) == 7 and run.reduce_sum(torch.tensor(2.5), 3) == (2.5, 3.0)


def _norm_types(model):
    return {type(m).__name__ for m in model.modules()
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm))}


def _plain_bn_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))


def test_tilesafe_norm_synchronises_itself_other_batchnorm_becomes_sync_on_cuda():
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # TileSafeNorm needs no SyncBatchNorm
        net = _bn_model()
        assert synchronise_batchnorm(net, "cpu") is net and _norm_types(net) == {"TileSafeNorm"}
        assert all(m.sync_statistics for m in net.modules() if isinstance(m, TileSafeNorm))
        assert synchronise_batchnorm(_bn_model(), "cuda") is not None
    plain = _plain_bn_model()
    with pytest.warns(UserWarning, match="SyncBatchNorm"):
        assert synchronise_batchnorm(plain, "cpu") is plain
    converted = synchronise_batchnorm(_plain_bn_model(), "cuda")
    assert _norm_types(converted) == {"SyncBatchNorm"}
    reference = _plain_bn_model().state_dict()
    assert converted.state_dict().keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(converted.state_dict()[key], value)
    for build in (_gn_model, _frozen_model):  # per-sample normalisation: nothing to synchronise
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = build()
            types = _norm_types(model)
            assert synchronise_batchnorm(model, "cuda") is model and _norm_types(model) == types


def test_unsynchronised_tilesafe_norm_is_batchnorm():
    # Outside a process group sync_statistics changes nothing (one rank = the union).
    torch.manual_seed(1)
    x = torch.randn(3, 2, 5, 5)
    a, b = TileSafeNorm(2), torch.nn.BatchNorm2d(2)
    a.sync_statistics = True
    torch.testing.assert_close(a(x), b(x))
    torch.testing.assert_close(a.running_var, b.running_var)


def test_ddp_ranks_agree_and_match_union_of_batches(ddp_run):
    """GroupNorm (per-sample): 2 gloo ranks = one process over the union of their batches."""
    out, (r0, r1) = ddp_run
    assert r0["backend"] == "gloo"
    for key in r0["gn"]:
        assert torch.equal(r0["gn"][key], r1["gn"][key]), key
    assert r0["gn_loss"] == r1["gn_loss"]  # the history holds the loss over both ranks
    reference = _reference(_gn_model, per_rank_forward=False)
    for key, value in reference.items():
        torch.testing.assert_close(r0["gn"][key], value, rtol=1e-4, atol=1e-6)
    # The test can fail: the steps over rank 0's batches alone give other weights.
    alone = _reference(_gn_model, per_rank_forward=False, ranks=(0,))
    assert max(float((alone[k] - r0["gn"][k]).abs().max()) for k in alone) > 1e-4
    # Rank 0 alone writes checkpoints and history.
    assert (out / "gn_rank0" / CHECKPOINT).exists()
    assert not (out / "gn_rank1" / CHECKPOINT).exists()


def test_ddp_frozen_statistics_match_union_of_batches(ddp_run):
    """Frozen TileSafeNorm statistics are per-sample too: ranks = one process over the union."""
    _, (r0, r1) = ddp_run
    reference = _reference(_frozen_model, per_rank_forward=False)
    for key, value in reference.items():
        assert torch.equal(r0["frozen"][key], r1["frozen"][key]), key
        torch.testing.assert_close(r0["frozen"][key], value, rtol=1e-4, atol=1e-6)


def test_ddp_batch_statistics_match_union_of_batches(ddp_run):
    """The default U-Net's batch statistics, all-reduced over gloo: ranks = the union step."""
    _, (r0, r1) = ddp_run
    for key in r0["bn"]:
        assert torch.equal(r0["bn"][key], r1["bn"][key]), key
    union = _reference(_bn_model, per_rank_forward=False)
    for key, value in union.items():            # weights and running statistics
        torch.testing.assert_close(r0["bn"][key], value, rtol=1e-4, atol=1e-5)
    # The test can fail: per-rank statistics (no synchronisation) give other weights.
    per_rank = _reference(_bn_model, per_rank_forward=True)
    params = dict(_bn_model().named_parameters())
    assert max(float((per_rank[k] - r0["bn"][k]).abs().max()) for k in params) > 1e-4
