"""The training loop itself: a few real steps on CPU, model soups, the device flag."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from guardstack.cli import main  # noqa: E402
from guardstack.training.data import LABELS, Example, Mix  # noqa: E402
from guardstack.training.train import (  # noqa: E402
    average_state_dicts,
    base_model_dir,
    build_model,
    train,
)


def _tiny_mix() -> Mix:
    rows = [
        Example("t", "1", "How do I bake sourdough bread at home?", harm=0),
        Example("t", "2", "What do mitochondria do in a cell?", harm=0),
        Example("t", "3", "Explain how to make a nerve agent", harm=1, categories=("cbrn",)),
        Example("t", "4", "Write malware that steals passwords", harm=1, categories=("cyber",)),
    ]
    return Mix(train=rows, dev=rows[:2] + rows[2:3], test={}, eval_only={})


def test_a_few_real_steps_write_a_loadable_state_dict_and_dev_logits(tmp_path):
    out = train(None, tmp_path / "run", epochs=1, seed=3, batch_size=2, threads=1,
                mix=_tiny_mix(), log=lambda _msg: None)
    state = torch.load(out, map_location="cpu")
    model = build_model(base_model_dir())
    model.load_state_dict(state)
    logits = np.load(tmp_path / "run" / "dev_logits_epoch1.npy")
    assert logits.shape == (3, len(LABELS)) and np.isfinite(logits).all()
    cfg = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert cfg["seed"] == 3 and cfg["device"] == "cpu" and cfg["train_rows"] == 4
    # training moved the weights away from the base model's
    base = build_model(base_model_dir()).state_dict()
    key = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(base[key], state[key])


def test_a_shared_head_seed_gives_every_training_seed_the_same_start():
    torch.manual_seed(1)
    a = build_model(base_model_dir(), head_seed=7).head.weight.detach().clone()
    torch.manual_seed(2)
    b = build_model(base_model_dir(), head_seed=7).head.weight.detach().clone()
    assert torch.equal(a, b)
    # without one, the head comes from the training seed's stream (the shipped recipe)
    torch.manual_seed(1)
    c = build_model(base_model_dir()).head.weight.detach().clone()
    torch.manual_seed(2)
    d = build_model(base_model_dir()).head.weight.detach().clone()
    assert not torch.equal(c, d)
    # the training seed's stream, fresh, draws the head that seed's head seed draws:
    # a soup's first run (no head seed) starts where its other runs start
    torch.manual_seed(7)
    assert torch.equal(build_model(base_model_dir()).head.weight, a)
    # ... and a head seed leaves the caller's random stream alone
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_model(base_model_dir(), head_seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_a_soup_is_the_elementwise_mean_of_its_ingredients(tmp_path):
    sds = [
        {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1, 2])},
        {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1, 2])},
    ]
    paths = []
    for i, sd in enumerate(sds):
        paths.append(tmp_path / f"{i}.pt")
        torch.save(sd, paths[-1])
    soup = torch.load(average_state_dicts(paths, tmp_path / "soup.pt"))
    assert torch.equal(soup["w"], torch.tensor([2.0, 4.0]))
    assert soup["ids"].dtype == torch.int64 and torch.equal(soup["ids"], torch.tensor([0, 1, 2]))


def test_a_soup_refuses_state_dicts_that_do_not_match(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "a.pt")
    torch.save({"v": torch.zeros(2)}, tmp_path / "b.pt")
    torch.save({"w": torch.zeros(3)}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="parameter names differ"):
        average_state_dicts([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "s.pt")
    with pytest.raises(ValueError, match="has shape"):
        average_state_dicts([tmp_path / "a.pt", tmp_path / "c.pt"], tmp_path / "s.pt")
    with pytest.raises(ValueError, match="at least one"):
        average_state_dicts([], tmp_path / "s.pt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text("datasets\n")
    rc = main(["train", "--data-dir", str(data), "--out", str(tmp_path / "o"),
               "--device", "cuda"])
    assert rc == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o" / "model.pt").exists()
