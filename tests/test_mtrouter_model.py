"""MTRouter model side: pool features, the network, training on a toy simulator, checkpoints."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mcp_router.routing.mtrouter.checkpoint import Checkpoint, PoolMismatch, value
from mcp_router.routing.mtrouter.network import MTRouterNet
from mcp_router.routing.mtrouter.pool import MetaNorm, ModelSpec, load_models_file, meta_features
from mcp_router.routing.mtrouter.train import TrainConfig, TrainingSet, fit, split_by_episode

GPT5 = ModelSpec(
    "openai/gpt-5",
    input_cost_per_token=1.25e-6,
    output_cost_per_token=10e-6,
    context_window=400_000,
    max_output_tokens=128_000,
    knowledge_cutoff="2024-09-30",
)
D = 12
FAST = TrainConfig(epochs=25, patience=25, val_fraction=0.2, lr=3e-3, seed=0, members=1)


# ---------------------------------------------------------------- pool


def test_meta_features_match_reference_section_5() -> None:
    f = meta_features(GPT5)
    expected = [
        math.log1p(400_000),
        math.log1p(128_000),
        math.log1p(1.25),  # USD per million
        math.log1p(10.0),
        -458.0,  # 2024-09-30 is 458 days before 2026-01-01
        math.log1p(528_000),
        math.log1p(10.0 / (1.25 + 1e-6)),
        math.log1p(11.25),
    ]
    assert f.dtype == np.float32 and f == pytest.approx(expected, rel=1e-6)


def test_meta_features_defaults_when_missing() -> None:
    f = meta_features(ModelSpec("local", input_cost_per_token=0.0, output_cost_per_token=0.0))
    expected = [math.log1p(128_000), math.log1p(4096), 0.0, 0.0, -731.0, math.log1p(132_096), 0.0, 0.0]
    assert f == pytest.approx(expected, rel=1e-6)


def test_load_models_file_shapes_aliases_and_order(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            {
                "zeta": {
                    "input_cost_per_token": 1e-7,
                    "output_cost_per_token": 2e-7,
                    "max_input_tokens": 8192,
                },
                "alpha": {"input_cost_per_million": 3.0, "output_cost_per_million": 6.0, "mode": "chat"},
            }
        )
    )
    specs = load_models_file(path)
    assert list(specs) == ["zeta", "alpha"]  # file order, not sorted
    assert specs["zeta"].context_window == 8192
    assert specs["alpha"].input_cost_per_token == pytest.approx(3e-6)
    assert specs["alpha"].metadata == {"mode": "chat"}
    assert specs["alpha"].cost_usd(1000, 100) == pytest.approx(3e-3 + 6e-4)
    path.write_text(json.dumps({"models": [{"name": "b"}, {"name": "a", "endpoints": ["p1"]}]}))
    specs = load_models_file(path)
    assert list(specs) == ["b", "a"] and specs["a"].endpoints == ("p1",)
    # missing prices take the reference defaults, 1.0 / 5.0 USD per million
    assert specs["b"].input_cost_per_token == pytest.approx(1e-6)
    assert specs["b"].output_cost_per_token == pytest.approx(5e-6)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"input_cost_per_token": -1}, "input_cost_per_token"),
        ({"context_window": 12.5}, "context_window"),
        ({"knowledge_cutoff": "2024-13-01"}, "knowledge_cutoff"),
        ({"quality_prior": 1.5}, "quality_prior"),
        ({"endpoints": "p1"}, "endpoints"),
        ({"context_window": 100, "max_input_tokens": 200}, "max_input_tokens"),
    ],
)
def test_load_models_file_errors_name_model_and_field(tmp_path: Path, entry: dict, field: str) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"good": {}, "bad-model": entry}))
    with pytest.raises(ValueError, match=field) as err:
        load_models_file(path)
    assert "'bad-model'" in str(err.value)


def test_meta_norm_is_defined_for_tiny_pools_and_frozen() -> None:
    one = MetaNorm.fit([GPT5])
    assert np.all(np.isfinite(one.std)) and one.apply(meta_features(GPT5)) == pytest.approx(np.zeros(8))
    cheap = replace(GPT5, name="cheap", input_cost_per_token=1e-7)
    two = MetaNorm.fit([GPT5, cheap])
    z = two.apply(np.stack([meta_features(GPT5), meta_features(cheap)]))
    assert np.all(np.abs(z) < 5)  # floored std: no blow-up from a 2-model pool
    # a model 10x pricier than a one-price pool stays at a moderate z
    pricey = replace(GPT5, input_cost_per_token=12.5e-6)
    assert abs(one.apply(meta_features(pricey))[2]) < 3
    assert MetaNorm.from_dict(two.to_dict()) == two


# ---------------------------------------------------------------- network


def test_network_shapes_parameter_count_and_zero_residual() -> None:
    meta = MetaNorm.fit([GPT5]).apply(np.stack([meta_features(GPT5)] * 6))
    net = MTRouterNet(768, meta)
    encoder = sum(
        p.numel() for n, p in net.named_parameters() if not n.startswith(("trunk", "score", "cost"))
    )
    assert encoder == 4_704  # reference §5, M = 6
    estimator = sum(p.numel() for n, p in net.named_parameters() if n.startswith(("trunk", "score")))
    assert estimator == 279_297  # reference §6, MiniLM split (D = 768 + 64)
    assert torch.count_nonzero(net.residual.weight) == 0
    zx = torch.randn(5, 768)
    s, c = net(zx)
    assert s.shape == c.shape == (5, 6)
    s1, c1 = net(zx, torch.tensor([0, 1, 2, 3, 5]))
    assert s1.shape == c1.shape == (5,)
    net.eval()
    assert torch.allclose(net(zx, torch.full((5,), 3))[0], net(zx)[0][:, 3], atol=1e-6)
    with pytest.raises(ValueError, match="zx"):
        net(torch.randn(2, 7))


def test_extended_network_keeps_existing_models() -> None:
    torch.manual_seed(0)
    net = MTRouterNet(D, np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)).eval()
    with torch.no_grad():
        net.residual.weight.normal_()
    bigger = net.extended(np.ones((2, 8), dtype=np.float32)).eval()
    zx = torch.randn(4, D)
    assert torch.allclose(bigger(zx)[0][:, :3], net(zx)[0], atol=1e-6)
    assert bigger.n_models == 5 and torch.count_nonzero(bigger.residual.weight[:, 3:]) == 0


def test_a_bag_serves_the_mean_of_members_that_differ() -> None:
    torch.manual_seed(0)
    net = MTRouterNet(D, np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32), members=3).eval()
    zx = torch.randn(5, D)
    each_s, each_c = net.member_outputs(zx)
    assert each_s.shape == each_c.shape == (3, 5, 3)
    assert not torch.allclose(each_s[0], each_s[1])  # initialised apart
    s, c = net(zx)
    assert torch.allclose(s, each_s.mean(0), atol=1e-6) and torch.allclose(c, each_c.mean(0), atol=1e-6)
    picked = torch.tensor([0, 2, 1, 1, 0])
    assert torch.allclose(net(zx, picked)[0], s[torch.arange(5), picked], atol=1e-6)
    with pytest.raises(ValueError, match="members"):
        MTRouterNet(D, np.zeros((2, 8), dtype=np.float32), members=0)


def test_bag_members_get_their_own_gradients_and_clipping() -> None:
    torch.manual_seed(0)
    net = MTRouterNet(D, np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32), members=2)
    net.residual.weight.data.normal_()
    score, _ = net.member_outputs(torch.randn(6, D), torch.tensor([0, 1, 2, 0, 1, 2]))
    (100 * score[0].sum()).backward()  # a loss on member 0 alone
    grads = [p.grad for p in net.parameters() if p.grad is not None]  # the cost head had no loss
    assert all(torch.count_nonzero(g[1]) == 0 for g in grads)
    assert sum(float(g[0].pow(2).sum()) for g in grads) > 1.0
    for g in grads:
        g[1] = 1e-4  # member 1: a small gradient, under the clip
    small = [g[1].clone() for g in grads]
    net.clip_grad_norm_(1.0)
    assert math.sqrt(sum(float(g[0].pow(2).sum()) for g in grads)) == pytest.approx(1.0, rel=1e-4)
    assert all(torch.equal(g[1], before) for g, before in zip(grads, small, strict=True))


def test_one_member_loads_the_one_network_layout_with_the_same_id() -> None:
    """Checkpoints written before bags hold each tensor without the member axis."""
    from mcp_router.routing.mtrouter.checkpoint import state_hash

    torch.manual_seed(0)
    meta = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    net = MTRouterNet(D, meta).eval()
    old_layout = {k: (v if k == "meta" else v.squeeze(0)) for k, v in net.state_dict().items()}
    assert old_layout["trunk.0.weight"].shape == (256, D + 64)
    assert old_layout["residual.weight"].shape == (3, 16)
    loaded = MTRouterNet(D, meta)
    loaded.load_any_state(old_layout)
    zx = torch.randn(4, D)
    assert torch.equal(loaded.eval()(zx)[0], net(zx)[0])
    assert state_hash(loaded) == state_hash(net)


# ---------------------------------------------------------------- training on a toy simulator

# Three latent state types; model k is best on type k; costs rise with the model index.
BEST_SCORE = np.array([[0.9, 0.4, 0.3], [0.3, 0.85, 0.4], [0.35, 0.3, 0.8]])
MODEL_COST = np.array([0.2, 0.5, 1.0])


def toy_pool() -> list[ModelSpec]:
    return [
        ModelSpec(f"m{k}", input_cost_per_token=p * 1e-6, output_cost_per_token=4 * p * 1e-6)
        for k, p in enumerate((0.1, 0.5, 2.0))
    ]


def toy_data(
    n: int, seed: int, score: np.ndarray = BEST_SCORE, steps: int = 4
) -> tuple[TrainingSet, np.ndarray]:
    """Uniformly logged steps: zx ~ its type's centre + noise; targets = the table + noise."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(42).normal(0, 1.5, size=(3, D))
    state = rng.integers(0, 3, n)
    zx = (centres[state] + rng.normal(0, 0.5, size=(n, D))).astype(np.float32)
    m = rng.integers(0, score.shape[1], n)
    data = TrainingSet(
        zx=zx,
        model_idx=m,
        score=score[state, m] + rng.normal(0, 0.05, n),
        cost=np.log1p(MODEL_COST[m % 3]) + rng.normal(0, 0.02, n),
        weight=np.full(n, float(score.shape[1])),  # 1 / uniform propensity
        episode=np.array([f"s{seed}-e{i // steps}" for i in range(n)]),
    )
    return data, state


@pytest.fixture(scope="module")
def trained() -> Checkpoint:
    data, _ = toy_data(1200, seed=1)
    return fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=FAST, extra_meta={"watermark": 1200})


def test_training_recovers_the_best_model_per_state(trained: Checkpoint) -> None:
    held, state = toy_data(300, seed=7)
    s_hat, c_hat = trained.predict(held.zx)
    assert s_hat.shape == (300, 3)
    accuracy = float(np.mean(s_hat.argmax(axis=1) == state))
    assert accuracy > 0.95
    assert np.all(np.diff(c_hat.mean(axis=0)) > 0)  # cost head ranks the models by cost
    val = trained.meta["validation"]
    assert val["epochs"] == FAST.epochs and val["score_mse"] < 0.02 and val["cost_mse"] < 0.01
    assert val["seconds"] > 0 and trained.meta["watermark"] == 1200 and trained.meta["parent"] is None
    # with λ large enough the cheapest model wins everywhere
    assert np.all(value(s_hat, c_hat, lam=5.0).argmax(axis=1) == 0)


def test_residual_learns_what_metadata_cannot_tell_apart() -> None:
    # Two models with identical metadata; only the learned residual can separate them.
    twins = [ModelSpec("left"), ModelSpec("right")]
    score = np.array([[0.9, 0.2], [0.2, 0.9], [0.5, 0.5]])
    data, _ = toy_data(1200, seed=3, score=score)
    ckpt = fit(data, twins, encoder_id="toy", c_bar=1.0, config=FAST)
    assert torch.count_nonzero(ckpt.net.residual.weight) > 0
    held, state = toy_data(300, seed=8, score=score)
    s_hat, _ = ckpt.predict(held.zx)
    decided = state < 2
    assert np.mean(s_hat[decided].argmax(axis=1) == state[decided]) > 0.9


def test_episode_split_is_disjoint_seeded_and_optional() -> None:
    episode = np.repeat([f"e{i}" for i in range(50)], 3)
    train, val = split_by_episode(episode, 0.2, seed=5)
    assert set(episode[train]).isdisjoint(episode[val])
    assert len(set(episode[val])) == 10 and len(train) + len(val) == len(episode)
    assert np.array_equal(val, split_by_episode(episode, 0.2, seed=5)[1])
    train, val = split_by_episode(np.array(["only"] * 4), 0.2, seed=5)
    assert len(train) == 4 and len(val) == 0
    assert len(split_by_episode(np.array(["a", "b"]), 0.01, seed=0)[1]) == 1  # at least one, never all


def test_fit_is_deterministic_and_leaves_global_state_alone() -> None:
    data, _ = toy_data(200, seed=2)
    config = replace(FAST, epochs=3)
    rng_before, threads_before = torch.get_rng_state(), torch.get_num_threads()
    a = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=config)
    b = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=config)
    assert a.checkpoint_id == b.checkpoint_id
    assert torch.equal(torch.get_rng_state(), rng_before) and torch.get_num_threads() == threads_before


def test_early_stopping_and_no_validation_with_one_episode() -> None:
    data, _ = toy_data(200, seed=4)
    data.score = np.random.default_rng(0).normal(size=200)  # pure noise: validation stops improving early
    stopped = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=replace(FAST, epochs=60, patience=2))
    val = stopped.meta["validation"]
    assert val["epochs"] < 60 and val["epochs"] == val["best_epoch"] + 2
    data.episode = np.array(["one"] * 200)
    whole = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=replace(FAST, epochs=4))
    assert whole.meta["validation"]["epochs"] == 4 and whole.meta["validation"]["score_mse"] is None


def test_warm_start_records_parent_and_needs_the_same_pool(trained: Checkpoint) -> None:
    data, _ = toy_data(200, seed=5)
    child = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=replace(FAST, epochs=2), init=trained)
    assert child.meta["parent"] == trained.checkpoint_id
    assert child.meta["meta_norm"] == trained.meta["meta_norm"]
    with pytest.raises(PoolMismatch):
        fit(data, toy_pool()[::-1], encoder_id="toy", c_bar=1.0, config=FAST, init=trained)
    with pytest.raises(ValueError, match="encoder"):
        fit(data, toy_pool(), encoder_id="other", c_bar=1.0, config=FAST, init=trained)


def test_fit_rejects_bad_input() -> None:
    data, _ = toy_data(50, seed=6)
    data.model_idx = data.model_idx + 5
    with pytest.raises(ValueError, match="model_idx"):
        fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=FAST)
    data, _ = toy_data(50, seed=6)
    with pytest.raises(ValueError, match="extra_meta"):
        fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=FAST, extra_meta={"c_bar": 2})


# ---------------------------------------------------------------- checkpoints


def test_save_load_round_trip_predicts_identically(trained: Checkpoint, tmp_path: Path) -> None:
    path = tmp_path / "ckpt" / "router.pt"
    trained.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["router.json", "router.pt"]  # no temp files left
    loaded = Checkpoint.load(path)
    zx = toy_data(20, seed=9)[0].zx
    for a, b in zip(trained.predict(zx), loaded.predict(zx), strict=True):
        assert np.array_equal(a, b)
    assert loaded.pool == trained.pool and loaded.checkpoint_id == trained.checkpoint_id
    assert loaded.meta == trained.meta  # JSON round trip of every key
    assert [s.name for s in loaded.specs()] == list(trained.pool)


def test_a_trained_bag_learns_and_round_trips(tmp_path: Path) -> None:
    data, _ = toy_data(1200, seed=1)
    bag = fit(data, toy_pool(), encoder_id="toy", c_bar=1.0, config=replace(FAST, members=3))
    assert bag.net.members == 3 and bag.meta["train"]["members"] == 3
    held, state = toy_data(300, seed=7)
    assert float(np.mean(bag.predict(held.zx)[0].argmax(axis=1) == state)) > 0.95
    with torch.inference_mode():
        each, _ = bag.net.member_outputs(torch.from_numpy(held.zx))
    assert float(each.std(0).mean()) > 1e-3  # the members are not copies of one another
    path = tmp_path / "bag.pt"
    bag.save(path)
    assert json.loads(path.with_suffix(".json").read_text())["net"]["members"] == 3
    loaded = Checkpoint.load(path)
    assert loaded.net.members == 3 and loaded.checkpoint_id == bag.checkpoint_id
    assert np.array_equal(loaded.predict(held.zx)[0], bag.predict(held.zx)[0])


def test_a_sidecar_from_before_bags_loads_as_one_member(trained: Checkpoint, tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    trained.save(path)
    side = path.with_suffix(".json")
    sidecar = json.loads(side.read_text())
    del sidecar["net"]["members"]
    side.write_text(json.dumps(sidecar))
    old = Checkpoint.load(path)
    assert old.net.members == 1 and old.checkpoint_id == trained.checkpoint_id


def test_load_errors_are_clear(trained: Checkpoint, tmp_path: Path) -> None:
    path = tmp_path / "router.pt"
    trained.save(path)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        Checkpoint.load(path)
    side.write_text(json.dumps({**meta, "checkpoint_id": "0" * 16}))
    with pytest.raises(ValueError, match="different saves"):
        Checkpoint.load(path)
    side.unlink()
    with pytest.raises(FileNotFoundError, match="sidecar"):
        Checkpoint.load(path)


def test_with_pool_validates_order_appends_and_masks(trained: Checkpoint) -> None:
    m0, m1, m2 = toy_pool()
    with pytest.raises(PoolMismatch, match="retrain") as err:
        trained.with_pool([m1, m0, m2])
    assert "['m0', 'm1', 'm2']" in str(err.value) and "['m1', 'm0', 'm2']" in str(err.value)

    zx = toy_data(30, seed=10)[0].zx
    before, _ = trained.predict(zx)
    new = ModelSpec("m3", input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    grown = trained.with_pool([m0, m1, new, m2])  # shared order kept; the new model may sit anywhere
    assert grown.pool == ("m0", "m1", "m2", "m3")
    assert torch.count_nonzero(grown.net.residual.weight[:, 3]) == 0
    expected_row = trained.meta_norm.apply(meta_features(new))
    assert np.allclose(grown.net.meta[3].numpy(), expected_row)
    after, _ = grown.predict(zx)
    assert np.allclose(after[:, :3], before, atol=1e-6) and np.all(np.isfinite(after[:, 3]))
    assert (
        grown.checkpoint_id != trained.checkpoint_id and grown.meta["derived_from"] == trained.checkpoint_id
    )

    shrunk = trained.with_pool([m0, m2])
    s, c = shrunk.predict(zx)
    assert np.all(s[:, 1] == -np.inf) and np.all(np.isfinite(s[:, [0, 2]])) and np.all(c[:, 1] == 0)
    s, _ = trained.predict(zx, pool=["m2", "unknown", "m0"])
    assert np.array_equal(s[:, [0, 2]], before[:, [2, 0]]) and np.all(s[:, 1] == -np.inf)
    assert np.all(value(s, np.zeros_like(s), lam=0.0)[:, 1] == -np.inf)


def test_value_folds_cost_into_the_score() -> None:
    q = value(np.array([[0.8, 0.6]]), np.array([[math.log1p(1.0), math.log1p(0.2)]]), lam=0.5)
    assert q == pytest.approx(np.array([[0.8 - 0.5 * 1.0, 0.6 - 0.5 * 0.2]]))
