"""The metric functions against small cases worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mnist_cnn.metrics import accuracy, confusion_matrix, most_confused, per_class_metrics

# Three classes, seven samples: one 0 read as 1, one 2 read as 0.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0, 2])
CM = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])


def test_confusion_matrix_counts_true_by_row_and_predicted_by_column():
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == CM.tolist()


def test_confusion_matrix_keeps_classes_that_never_occur():
    cm = confusion_matrix(np.array([0, 0]), np.array([0, 0]), 4)
    assert cm.shape == (4, 4)
    assert cm.sum() == 2 and cm[0, 0] == 2


def test_confusion_matrix_of_nothing_is_zeros():
    assert not confusion_matrix(np.array([], int), np.array([], int), 3).any()


@pytest.mark.parametrize(("y_true", "y_pred"), [([0, 3], [0, 1]), ([0, 1], [0, -1]), ([0, 1], [0])])
def test_confusion_matrix_rejects_bad_labels(y_true, y_pred):
    with pytest.raises(ValueError):
        confusion_matrix(np.array(y_true), np.array(y_pred), 3)


def test_accuracy_is_the_diagonal_over_the_total():
    assert accuracy(CM) == pytest.approx(5 / 7)
    assert accuracy(np.zeros((3, 3), int)) == 0.0


def test_per_class_metrics_of_a_known_matrix():
    result = per_class_metrics(CM)
    np.testing.assert_allclose(result.precision, [1 / 2, 2 / 3, 2 / 2])
    np.testing.assert_allclose(result.recall, [1 / 2, 2 / 2, 2 / 3])
    np.testing.assert_allclose(result.f1, [1 / 2, 0.8, 0.8])
    assert result.support.tolist() == [2, 2, 3]


def test_a_class_never_predicted_scores_zero_not_nan():
    cm = np.array([[2, 0, 0], [1, 0, 0], [0, 0, 0]])  # class 1 never predicted, 2 never seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would warn before it became NaN
        result = per_class_metrics(cm)
    for values in (result.precision, result.recall, result.f1):
        assert not np.isnan(values).any()
    assert result.precision.tolist() == pytest.approx([2 / 3, 0, 0])
    assert result.recall.tolist() == [1, 0, 0]
    assert result.f1[1:].tolist() == [0, 0]
    assert result.support.tolist() == [2, 1, 0]


def test_per_class_metrics_agree_with_a_direct_count():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 500), rng.integers(0, 5, 500)
    result = per_class_metrics(confusion_matrix(y_true, y_pred, 5))
    for digit in range(5):
        hits = np.sum((y_true == digit) & (y_pred == digit))
        assert result.precision[digit] == pytest.approx(hits / np.sum(y_pred == digit))
        assert result.recall[digit] == pytest.approx(hits / np.sum(y_true == digit))


def test_most_confused_orders_by_count_then_class():
    cm = np.array([[9, 3, 1], [3, 9, 0], [5, 0, 9]])
    assert most_confused(cm, 3) == [(2, 0, 5), (0, 1, 3), (1, 0, 3)]
    assert most_confused(cm, 10) == [(2, 0, 5), (0, 1, 3), (1, 0, 3), (0, 2, 1)]


def test_most_confused_of_a_perfect_model_is_empty():
    assert most_confused(np.diag([5, 5, 5]), 3) == []
