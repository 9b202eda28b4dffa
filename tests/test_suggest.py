"""The one "did you mean" helper: the same hint as the messages that had their own copies."""

from gradcheck.suggest import did_you_mean


def test_the_closest_choice_is_suggested():
    assert did_you_mean("sigmod", ["sigmoid", "tanh", "relu"]) == ' (did you mean "sigmoid"?)'


def test_nothing_close_gives_no_hint():
    assert did_you_mean("zzz", ["sigmoid", "tanh"]) == ""


def test_any_iterable_of_choices_is_read_once():
    assert did_you_mean("layer", iter(["layers", "terms"])) == ' (did you mean "layers"?)'
