"""Unstructured pruning: masks kept while finetuning, the cubic schedule, criteria, first-layer cap."""
import copy

import pytest
import torch

from edgeprune.models import zoo
from edgeprune.models.metrics import evaluate
from edgeprune.models.train import Recipe, step_count, train
from edgeprune import task as tasks
from edgeprune.prune.gradual import Cubic, UnstructuredStep, over_steps
from edgeprune.prune.schedule import ScheduleConfig, iterative_prune
from edgeprune.prune.unstructured import (compute_masks, make_permanent, prune_weights, scores,
                                          sparsity_report, taylor_scores, weight_layers)

SHAPE = (1, 1, 8, 8)


def zeros_expected(model, sparsity):
    return {name: round(sparsity * m.weight.numel()) for name, m in weight_layers(model).items()}


def test_cubic_schedule_follows_zhu_and_gupta():
    schedule = Cubic(initial=0.1, final=0.8, begin=10, every=5, updates=4)  # t0 = 10, n dt = 20
    expected = {0: 0.1, 9: 0.1, 10: 0.1, 14: 0.1,
                15: 0.8 - 0.7 * (1 - 5 / 20) ** 3, 19: 0.8 - 0.7 * (1 - 5 / 20) ** 3,
                20: 0.8 - 0.7 * (1 - 10 / 20) ** 3, 25: 0.8 - 0.7 * (1 - 15 / 20) ** 3,
                30: 0.8, 1000: 0.8}
    assert {t: schedule.at(t) for t in expected} == pytest.approx(expected, abs=1e-12)
    assert schedule.end == 30
    assert over_steps(0.0, 0.8, 170) == Cubic(0.0, 0.8, 0, 12, 10)  # 127 pruning steps, 10 updates
    assert over_steps(0.0, 0.8, 4) == Cubic(0.0, 0.8, 0, 1, 3)


def test_gradual_rounds_reach_the_target_on_the_schedule(trained, digits, monkeypatch):
    """Two gradual rounds to 80 %: the model's sparsity at each step follows the cubic schedule."""
    seen: list[float] = []

    def recording(model, *args, on_step=None, **kwargs):
        def hook(step):
            on_step(step)
            seen.append(sparsity_report(model).sparsity)
        return train(model, *args, on_step=hook, **kwargs)

    monkeypatch.setattr(tasks, "train", recording)
    config = ScheduleConfig(rounds=2, max_drop=1.0, finetune=Recipe(epochs=1, lr=3e-3))
    result = iterative_prune(trained, SHAPE, digits, UnstructuredStep(0.8, gradual=True), config, progress=False)
    total = step_count(config.finetune, len(digits.x_train))
    assert len(seen) == 2 * total
    for k, start, target in ((0, 0.0, 0.4), (1, 0.4, 0.8)):
        schedule = over_steps(start, target, total)
        # Layer-wise rounding: the model's sparsity is within one weight per layer of the schedule's.
        assert seen[k * total:(k + 1) * total] == pytest.approx(
            [schedule.at(t) for t in range(total)], abs=4 / 14_288)
    assert [r["target_sparsity"] for r in result.history] == [0.4, 0.8]
    report = sparsity_report(result.model)
    assert {l.name: l.zeros for l in report.layers} == zeros_expected(result.model, 0.8)
    assert not any("mask" in key or "orig" in key for key in result.model.state_dict())


def test_masked_finetuning_keeps_zeros_zero(trained, digits):
    """One-shot 80 % magnitude masks, then 2 finetune epochs: the same weights are exactly zero."""
    model = copy.deepcopy(trained)
    prune_weights(model, 0.8)
    pruned = {name: (m.weight == 0).clone() for name, m in weight_layers(model).items()}
    before = {name: m.weight.detach().clone() for name, m in weight_layers(model).items()}
    train(model, digits.x_train, digits.y_train, Recipe(epochs=2, lr=3e-3))
    make_permanent(model)
    for name, m in weight_layers(model).items():
        assert torch.equal(m.weight == 0, pruned[name]), name
        assert int((m.weight == 0).sum()) == round(0.8 * m.weight.numel())
        assert not torch.equal(m.weight, before[name])  # the kept weights were trained
    assert not any("mask" in key or "orig" in key for key in model.state_dict())


def test_short_recipe_keeps_most_accuracy_at_80_percent(trained, digits):
    """The issue's bound is 1 point with the README's recipe (20 epochs); 3 gradual epochs lose < 5."""
    dense = evaluate(trained, digits.x_test, digits.y_test, 10).accuracy
    config = ScheduleConfig(rounds=1, max_drop=1.0, finetune=Recipe(epochs=3, lr=3e-3))
    step = UnstructuredStep(0.8, gradual=True, first_layer_cap=0.5)
    result = iterative_prune(trained, SHAPE, digits, step, config, progress=False)
    assert sparsity_report(result.model).sparsity == pytest.approx(0.8, abs=1e-4)
    assert evaluate(result.model, digits.x_test, digits.y_test, 10).accuracy >= dense - 0.05


def test_first_layer_cap_and_global_scope():
    model = zoo.build_model("digits_cnn")
    layers = weight_layers(model)
    ones = {name: torch.ones_like(m.weight) for name, m in layers.items()}
    magnitude = scores(model, "magnitude")
    masks = compute_masks(magnitude, ones, 0.8, "layer", first_layer_cap=0.5)
    # The first layer stops at 72 of 144; the others make up for it: 11,430 zeros = 80 % of 14,288.
    assert [int((m == 0).sum()) for m in masks.values()] == [72, 3700, 7401, 257]
    masks = compute_masks(magnitude, ones, 0.8, "global", first_layer_cap=0.5)
    rest = torch.cat([magnitude[name][masks[name] == 1] for name in list(layers)[1:]])
    cut = torch.cat([magnitude[name][masks[name] == 0] for name in list(layers)[1:]])
    assert int((masks["0.0"] == 0).sum()) == 72
    assert len(cut) == 11_430 - 72 and cut.max() <= rest.min()


def test_previously_pruned_weights_go_first():
    model = zoo.build_model("digits_cnn")
    prune_weights(model, 0.5, criterion="random", generator=torch.Generator().manual_seed(1))
    first = {name: m.weight_mask.clone() for name, m in weight_layers(model).items()}
    prune_weights(model, 0.7, criterion="random", generator=torch.Generator().manual_seed(2))
    for name, m in weight_layers(model).items():
        assert torch.all(m.weight_mask <= first[name])  # masks only lose ones
        assert int((m.weight_mask == 0).sum()) == round(0.7 * m.weight.numel())


def test_taylor_scores_are_weight_times_gradient(trained, digits):
    model = copy.deepcopy(trained)
    got = taylor_scores(model, digits.x_train, digits.y_train, batches=1, batch_size=32)
    model.eval()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(digits.x_train[:32])),
                                             torch.from_numpy(digits.y_train[:32]))
    weights = [m.weight for m in weight_layers(model).values()]
    grads = torch.autograd.grad(loss, weights)
    for (name, score), w, g in zip(got.items(), weights, grads):
        torch.testing.assert_close(score, (w * g).abs().detach(), msg=name)
    prune_weights(model, 0.5, criterion="taylor", x=digits.x_train, y=digits.y_train)
    first = weight_layers(model)["0.0"]
    taylor = taylor_scores(copy.deepcopy(trained), digits.x_train, digits.y_train)["0.0"]
    assert taylor[first.weight_mask == 0].max() <= taylor[first.weight_mask == 1].min()
