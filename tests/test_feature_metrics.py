"""Coverage and reconstruction on a case worked out by hand (see the comments for every count)."""

import pytest
import torch

from tasks.chess import feature_metrics
from tasks.chess.feature_metrics import BSPGroup, THRESHOLDS, _reconstruction_counts, any_labelled, evaluate_features


def _column(n, positives):
    out = torch.zeros(n, dtype=torch.uint8)
    out[list(positives)] = 1
    return out


def _hand_case():
    # Train: 20 positions, two one-class cells. A = {0..9}, B = {0..4, 10..14}.
    y_train = torch.stack([_column(20, range(0, 10)), _column(20, [*range(0, 5), *range(10, 15)])], 1)
    # f0: 1.0 on 0..9, 0.3 on 19.  f1: 0.5 on 0..4, 1.0 on 10..14, 0.2 on 15..19.  max = 1 for both.
    train = torch.zeros(20, 2)
    train[0:10, 0] = 1.0
    train[19, 0] = 0.3
    train[0:5, 1] = 0.5
    train[10:15, 1] = 1.0
    train[15:20, 1] = 0.2
    # Test: 10 positions, A = {0..4}, B = {3..7}. f0: 1.0 on 0..3, 0.25 on 8.  f1: 0.6 on 3..7, 0.45 on 9.
    y_test = torch.stack([_column(10, range(0, 5)), _column(10, range(3, 8))], 1)
    test = torch.zeros(10, 2)
    test[0:4, 0] = 1.0
    test[8, 0] = 0.25
    test[3:8, 1] = 0.6
    test[9, 1] = 0.45
    return train, test, torch.tensor([1.0, 1.0]), {"g": BSPGroup(y_train, y_test, 1)}


def test_thresholds_are_float32_of_the_reference_grid():
    assert len(THRESHOLDS) == 11
    assert THRESHOLDS.dtype == torch.float32
    assert THRESHOLDS[3].item() == pytest.approx(0.30000001192092896, abs=0)


def test_coverage_by_threshold_matches_hand_counts():
    out = evaluate_features(*_hand_case())["g"]
    # t=0, 0.1: f0 on {0..9,19}: A F1 = 20/21; f1 on {0..4,10..19}: B F1 = 0.8 (TP10 FP5).
    # t=0.2: 0.2 > float32(0.2)*1 is false (strict), f1 on {0..4,10..14}: B F1 = 1.
    # t=0.3, 0.4: 0.3 is no longer above float32(0.3): f0 on {0..9}: A F1 = 1 -> mean 1.
    # t=0.5..0.9: f1 on {10..14} only: B F1 = 2/3 (f0 gives B 0.5). t=1.0: nothing on (1.0 > 1.0 false).
    expected = [(20 / 21 + 0.8) / 2] * 2 + [(20 / 21 + 1) / 2] + [1.0] * 2 + [(1 + 2 / 3) / 2] * 5 + [0.0]
    assert out["coverage_by_threshold"] == pytest.approx(expected, abs=1e-6)
    assert out["coverage"] == pytest.approx(1.0, abs=1e-6)
    assert out["coverage_threshold"] == 0.3


def test_reconstruction_matches_hand_counts():
    out = evaluate_features(*_hand_case())["g"]
    # Labels need precision >= 0.95 and TP >= 10 on train:
    #   t<=0.1: none (f0->A is 10/11, f1->B 10/15).  t=0.2: f1->B.  t=0.3,0.4: f0->A and f1->B.
    #   t>=0.5: f0->A only (f1 has TP 5 on B).
    # Test predictions:  t=0.2: B on {3..7,9}: TP5 FP1 FN5 -> F1 0.625.
    #   t=0.3,0.4: A on {0..3}, B on {3..7,9}: TP9 FP1 FN1 -> 0.9.  t>=0.5: A on {0..3}: TP4 FN6 -> 4/7.
    expected = [0.0, 0.0, 0.625, 0.9, 0.9] + [4 / 7] * 5
    assert out["reconstruction_by_threshold"] == pytest.approx(expected, abs=1e-6)
    assert out["reconstruction"] == pytest.approx(0.9, abs=1e-6)
    assert out["reconstruction_threshold"] == 0.3  # tie with 0.4 goes to the lowest t
    assert out["reconstruction_per_square"] == pytest.approx(0.9, abs=1e-6)  # one class per cell: the same
    # coverage's winners at its threshold 0.3: f0 -> A and f1 -> B, each F1 1
    assert out["best_feature_per_bsp"] == [0, 1]
    assert out["best_f1_per_bsp"] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_reconstruction_picks_t_by_per_square_f1_and_reports_per_class_f1_there():
    # One cell of two classes. Train: 20 positions, class 0 on 0..9, class 1 on 10..19; f0 = 1 on 0..9 and
    # f1 = 1 on 10..19, so f0 -> class 0 and f1 -> class 1 are labelled at every t (precision 1, TP 10).
    y_train = torch.stack([_column(20, range(0, 10)), _column(20, range(10, 20))], 1)
    train = torch.zeros(20, 2)
    train[0:10, 0] = 1.0
    train[10:20, 1] = 1.0
    # Test: 10 positions, class 0 on 0..4, class 1 on 5..9. f0: 1 on 0..1, 0.35 on 2..4; f1: 1 on 5..9,
    # 0.35 on 0..3 (a wrong class beside the right one).
    y_test = torch.stack([_column(10, range(0, 5)), _column(10, range(5, 10))], 1)
    test = torch.zeros(10, 2)
    test[0:2, 0] = 1.0
    test[2:5, 0] = 0.35
    test[5:10, 1] = 1.0
    test[0:4, 1] = 0.35
    out = evaluate_features(train, test, torch.tensor([1.0, 1.0]), {"g": BSPGroup(y_train, y_test, 2)})["g"]
    # t <= 0.3: class 0 on 0..4 (TP 5), class 1 on 0..9 (TP 5, FP 4 on 0..3). Per class TP 10 FP 4 FN 0:
    #   F1 20/24. Per square the 4 squares with one right and one wrong class are no hit: TP 6 -> 12/16.
    # t >= 0.4: class 0 on 0..1 (TP 2, FN 3), class 1 on 5..9 (TP 5): TP 7 FP 0 FN 3 -> 14/17 both ways.
    assert out["reconstruction_by_threshold"] == pytest.approx([20 / 24] * 4 + [14 / 17] * 6, abs=1e-6)
    # per square is best at t = 0.4, where per class is 14/17, below its own best (20/24 at t = 0)
    assert out["reconstruction_threshold"] == 0.4
    assert out["reconstruction"] == pytest.approx(14 / 17, abs=1e-6)
    assert out["reconstruction_per_square"] == pytest.approx(14 / 17, abs=1e-6)


def test_per_square_subtracts_one_right_one_wrong_only():
    # One position, two cells of three classes. Truth: cell0 class0, cell1 class1.
    truth = torch.tensor([[1, 0, 0, 0, 1, 0]], dtype=torch.bool)
    # cell0 predicts {0, 2}: one right + one wrong -> subtracted.  cell1 predicts {0, 1, 2}: two wrong -> kept.
    pred = torch.tensor([[1, 0, 1, 1, 1, 1]], dtype=torch.bool)
    counts = _reconstruction_counts(pred, truth, 3)
    assert counts["f1_per_class"] == pytest.approx(2 * 0.4 / 1.4, abs=1e-6)       # TP2 FP3 FN0
    assert counts["f1_per_square"] == pytest.approx(2 * 0.25 / 1.25, abs=1e-6)     # TP1 FP3 FN0


def test_a_feature_whose_max_is_negative_is_never_on():
    train, test, _, groups = _hand_case()
    out = evaluate_features(-train, -test, torch.tensor([-0.1, -0.1]), groups)["g"]
    assert out["coverage"] == 0.0 and out["reconstruction"] == 0.0


def _straightforward(train, test, max_acts, y_train, y_test):
    """The counts of docs/chess.md sections 6-8 written out one threshold, feature and BSP at a time."""
    cov, rec = [], []
    for t_index, t in enumerate(THRESHOLDS):
        on_tr = train > t * max_acts.abs()
        on_te = test > t * max_acts.abs()
        best = []
        labels = torch.zeros(train.shape[1], y_train.shape[1], dtype=torch.bool)
        for j in range(y_train.shape[1]):
            scores = []
            for f in range(train.shape[1]):
                tp = (on_tr[:, f] & y_train[:, j].bool()).sum().item()
                on = on_tr[:, f].sum().item()
                pos = y_train[:, j].sum().item()
                p, r = tp / (on + 1e-8), tp / (pos + 1e-8)
                scores.append(2 * p * r / (p + r + 1e-8))
                labels[f, j] = on > 0 and tp / on >= 0.95 and tp >= 10
            best.append(max(scores))
        cov.append(sum(best) / len(best))
        if t_index < 10:
            pred = torch.stack([(on_te[:, labels[:, j]]).any(1) for j in range(y_train.shape[1])], 1)
            truth = y_test.bool()
            tp, fp, fn = (pred & truth).sum().item(), (pred & ~truth).sum().item(), (~pred & truth).sum().item()
            p, r = tp / (tp + fp + 1e-8), tp / (tp + fn + 1e-8)
            rec.append(2 * p * r / (p + r + 1e-8))
    return cov, rec


@pytest.mark.parametrize("seed", [0, 1, 2])  # several inputs, the same on every run
def test_matrix_counting_equals_the_straightforward_counts_on_random_sparse_inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    n, features, bsps = 120, 9, 5
    y_train = (torch.rand(n, bsps, generator=gen) < 0.3).to(torch.uint8)
    y_test = (torch.rand(n, bsps, generator=gen) < 0.3).to(torch.uint8)
    # features that copy a BSP with noise, so labels and high F1s occur, plus pure noise
    train = torch.rand(n, features, generator=gen) * (torch.rand(n, features, generator=gen) < 0.2)
    test = torch.rand(n, features, generator=gen) * (torch.rand(n, features, generator=gen) < 0.2)
    train[:, :bsps] += y_train.float() * (0.5 + torch.rand(n, bsps, generator=gen))
    test[:, :bsps] += y_test.float() * (0.5 + torch.rand(n, bsps, generator=gen))
    max_acts = train.max(0).values
    out = evaluate_features(train, test, max_acts, {"g": BSPGroup(y_train, y_test, 1)})["g"]
    cov, rec = _straightforward(train, test, max_acts, y_train, y_test)
    assert out["coverage_by_threshold"] == pytest.approx(cov, abs=1e-6), f"seed {seed}"
    assert out["reconstruction_by_threshold"] == pytest.approx(rec, abs=1e-6), f"seed {seed}"
    assert max(rec) > 0  # labels were learned: the reconstruction path was exercised


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("features_per_block", [40, 7])  # one block, and blocks that split the tie below
def test_sparse_counting_gives_exactly_the_dense_counts(features_per_block, seed, monkeypatch):
    import tasks.chess.threshold_counts as counting

    monkeypatch.setattr(counting, "ENTRIES_PER_BLOCK", 300 * features_per_block)
    gen = torch.Generator().manual_seed(seed)
    n, features = 300, 40
    y_train = (torch.rand(n, 12, generator=gen) < 0.3).to(torch.uint8)
    y_test = (torch.rand(n, 12, generator=gen) < 0.3).to(torch.uint8)
    train = torch.rand(n, features, generator=gen) * (torch.rand(n, features, generator=gen) < 0.05)
    test = torch.rand(n, features, generator=gen) * (torch.rand(n, features, generator=gen) < 0.05)
    train[:, :12] += y_train.float() * (0.5 + torch.rand(n, 12, generator=gen))
    train[:, 20], test[:, 20] = train[:, 3], test[:, 3]  # a tie across blocks: the lower index must win
    train[:, 30], train[:, 31] = 0.0, -train[:, 31] - 0.1  # never active; negative maximum (never on)
    max_acts = train.max(0).values
    groups = {"board_state": BSPGroup(y_train, y_test, 3)}
    fast = evaluate_features(train, test, max_acts, groups)
    dense = evaluate_features(train, test, max_acts, groups, sparse=False)
    assert fast == dense, f"seed {seed}"


def test_any_labelled_on_a_hand_case():
    # Features 0 and 1 carry label 0; feature 2 carries labels 1 and 2; label 3 has no feature.
    labels = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    # Position 0: only f0 on. Position 1: f1 and f2. Position 2: nothing. Position 3: only f2.
    on = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]], dtype=torch.bool)
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(any_labelled(on, labels), expected)


@pytest.mark.parametrize("n_pos,n_features,n_labels", [(1, 1, 1), (7, 3, 2), (64, 5, 70), (130, 40, 200), (1000, 3, 129),
                                                  (0, 4, 3), (5, 0, 3), (5, 4, 0)])
@pytest.mark.parametrize("pairs_per_slice", [1, 7, 4096])
def test_any_labelled_equals_the_product_of_counts(n_pos, n_features, n_labels, pairs_per_slice, monkeypatch):
    monkeypatch.setattr(feature_metrics, "PAIRS_PER_SLICE", pairs_per_slice)  # labels cut between slices too
    gen = torch.Generator().manual_seed(n_pos)
    on = torch.rand(n_pos, n_features, generator=gen) < 0.3
    labels = torch.rand(n_features, n_labels, generator=gen) < 0.1
    if n_features:
        labels[0] = False  # a feature that carries nothing
    expected = (on.float() @ labels.float()) > 0
    assert torch.equal(any_labelled(on, labels), expected)
    # a strided view in, as the caller may pass
    assert torch.equal(any_labelled(on.T.contiguous().T, labels), expected)


@pytest.mark.parametrize("tp, on, labelled", [(19, 20, True), (18, 19, False)])
def test_a_label_needs_precision_of_at_least_0_95_inclusive(tp, on, labelled):
    # One cell, one feature (max 1) on at positions 0..on-1 of 40; the cell is set on tp of them and on
    # 30..39 besides. 19/20 is exactly 0.95 and labels the feature; 18/19 (0.947) does not. On test,
    # the feature is on exactly where the cell is set, so a label reconstructs it perfectly.
    y_train = _column(40, [*range(tp), *range(30, 40)])[:, None]
    train = torch.zeros(40, 1)
    train[:on, 0] = 1.0
    test = torch.tensor([[1.0]] * 5 + [[0.0]] * 5)
    out = evaluate_features(train, test, torch.tensor([1.0]), {"g": BSPGroup(y_train, _column(10, range(5))[:, None], 1)})
    assert out["g"]["reconstruction"] == pytest.approx(1.0 if labelled else 0.0)


class _StubFeatures:
    """Our glue's view of an adapter, for feature_statistics alone: feature 0 is 1 on every real token
    and 100 on padding (which must be left out), feature 1 is -1 everywhere (never fires), feature 2
    is 2 on the first token of each game only."""
    device = "cpu"

    def features(self, tokens, layer, site):
        from tasks.chess.move_vocab import PAD_ID

        first = torch.zeros(tokens.shape, dtype=torch.bool)
        first[:, 0] = True
        return torch.stack([torch.where(tokens == PAD_ID, 100.0, 1.0), torch.full(tokens.shape, -1.0),
                            first.float() * 2.0], -1)


def test_feature_statistics_take_the_max_and_l0_over_real_tokens_only():
    from tasks.chess.evaluate import feature_statistics

    games = [";1.e4 e5 2.Nf3 Nc6", ";1.d4"]                # 1 + 4 and 1 + 1 tokens of a 64-token window
    max_acts, l0_fraction = feature_statistics(_StubFeatures(), games, layer=0, site="mlp", batch_size=1,
                                               fmt_name="moves")
    assert max_acts.tolist() == [1.0, -1.0, 2.0]              # padding's 100 is not a maximum
    # 7 real tokens x 3 features; feature 0 fires on all 7, feature 2 on the 2 first tokens
    assert l0_fraction == pytest.approx((7 + 2) / (7 * 3))
