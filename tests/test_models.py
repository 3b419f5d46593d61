"""The models and losses: the paper's shape, a correct LSTM cell, every variant's interface."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from emoblend.train.losses import class_weights, make_loss  # noqa: E402
from emoblend.train.models import PRESETS, KerasLSTM, build_model, count_parameters  # noqa: E402


def test_paper_model_has_the_authors_parameter_count():
    # The author's saved Keras model: LSTM 52, 16, 48, 44 (selu) + Dense(3) = 44,631 weights,
    # whatever the sequence length (27 or 52 blendshapes).
    for n_features in (27, 52):
        model = build_model("paper-lstm", n_features)
        assert count_parameters(model) == 44_631
        assert [layer.units for layer in model.layers] == [52, 16, 48, 44]


def test_keras_cell_with_tanh_equals_torch_lstm():
    # With tanh the hand-written cell must be exactly a standard LSTM (same gate order i, f,
    # g, o as PyTorch); only the activation differs in the paper's selu model.
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 8, batch_first=True)
    cell = KerasLSTM(3, 8, activation="tanh")
    with torch.no_grad():
        cell.kernel.copy_(reference.weight_ih_l0.T)
        cell.recurrent.copy_(reference.weight_hh_l0.T)
        cell.bias.copy_(reference.bias_ih_l0 + reference.bias_hh_l0)
    x = torch.randn(5, 11, 3)
    torch.testing.assert_close(cell(x), reference(x)[0], atol=1e-6, rtol=1e-5)


def test_selu_cell_differs_from_tanh():
    torch.manual_seed(0)
    selu = KerasLSTM(1, 4, activation="selu")
    tanh = KerasLSTM(1, 4, activation="tanh")
    tanh.load_state_dict(selu.state_dict())
    x = torch.rand(2, 6, 1) * 3
    assert not torch.allclose(selu(x), tanh(x))


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("n_features", [27, 52])
def test_every_variant_maps_features_to_three_logits(preset, n_features):
    model = build_model(preset, n_features)
    out = model(torch.rand(4, n_features))
    assert out.shape == (4, 3)
    assert torch.isfinite(out).all()


def test_log_prior_shifts_logits_per_class():
    model = build_model("dense", 52).eval()
    x = torch.rand(3, 52)
    before = model(x)
    model.log_prior.copy_(torch.tensor([0.5, 0.0, -0.25]))
    torch.testing.assert_close(model(x) - before, torch.tensor([[0.5, 0.0, -0.25]] * 3))


def test_losses_agree_with_their_definitions():
    torch.manual_seed(0)
    logits, y = torch.randn(32, 3), torch.randint(0, 3, (32,))
    weights = class_weights(y.numpy())
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(make_loss("ce")(logits, y), ce(logits, y))
    torch.testing.assert_close(make_loss("ce", weights)(logits, y), ce(logits, y, weight=weights))
    # Focal loss with gamma 0 is cross-entropy (weighted the same way).
    torch.testing.assert_close(make_loss("focal", gamma=0.0)(logits, y), ce(logits, y))
    torch.testing.assert_close(
        make_loss("focal", weights, gamma=0.0)(logits, y), ce(logits, y, weight=weights)
    )
    # MSE is zero for (nearly) perfect predictions and positive otherwise.
    perfect = torch.nn.functional.one_hot(y, 3).float() * 50
    assert make_loss("mse")(perfect, y) < 1e-6 < make_loss("mse")(logits, y)
    # Balanced weights: each class carries the same total weight.
    counts = torch.bincount(y, minlength=3).float()
    assert torch.allclose(weights * counts, torch.full((3,), len(y) / 3))
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge")
