"""The sweep's verdict: a best setting only beyond the seeds' noise, by Welch's t-test checked against scipy's."""
import pytest
from scipy import stats

from pipeline import verdict


def _setting(name, accuracies, clipped=0.5, threshold=1.0, diverged=None):
    return verdict.Setting(name, "global_norm" if threshold else "zclip", threshold, 0.001, 255.0,
                           list(range(len(accuracies))), list(accuracies), [clipped] * len(accuracies),
                           diverged or [False] * len(accuracies))


@pytest.mark.parametrize("a,b", [
    ([0.9587, 0.9561, 0.9612, 0.9590], [0.9595, 0.9601, 0.9588, 0.9597]),
    ([0.98, 0.97, 0.985], [0.96, 0.955, 0.962, 0.958, 0.961]),  # unequal sizes and spreads
    ([0.1, 0.1135, 0.098], [0.95, 0.96]),
])
def test_welch_p_value_equals_scipys(a, b):
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert verdict.welch_p_value(a, b) == pytest.approx(expected, rel=1e-9)


def test_no_spread_at_all_is_certain_either_way():
    assert verdict.welch_p_value([0.1135] * 4, [0.1135] * 4) == 1.0
    assert verdict.welch_p_value([0.1135] * 4, [0.1026] * 4) == 0.0


def test_a_setting_better_beyond_the_noise_is_the_winner():
    decided = verdict.decide([
        _setting("global_norm-1", [0.960, 0.961, 0.959, 0.960]),
        _setting("global_norm-50", [0.950, 0.951, 0.949, 0.950], clipped=0.0),
        _setting("none", [0.1135, 0.1135, 0.1026, 0.1135], clipped=0.0, threshold=None),
    ])
    assert (decided.best, decided.winner, decided.tied) == ("global_norm-1", True, ["global_norm-1"])
    assert set(decided.p_values) == {"global_norm-50", "none"} and max(decided.p_values.values()) < 0.05
    assert decided.sentence().startswith("global_norm-1: better than every other setting beyond the seeds' noise")


def test_settings_within_the_noise_are_listed_and_the_lightest_touch_recommended():
    decided = verdict.decide([
        _setting("global_norm-1", [0.9595, 0.9580, 0.9610, 0.9590], clipped=0.008),
        _setting("zclip", [0.9587, 0.9560, 0.9615, 0.9586], clipped=0.30, threshold=None),
        _setting("global_norm-5", [0.9590, 0.9570, 0.9600, 0.9575], clipped=0.001),
        _setting("global_norm-50", [0.940, 0.941, 0.939, 0.940], clipped=0.0),
    ])
    assert not decided.winner
    assert decided.tied[0] == "global_norm-1" and set(decided.tied) == {"global_norm-1", "zclip", "global_norm-5"}
    assert decided.best == "global_norm-5"  # clips least among the three; global_norm-50 is worse beyond the noise
    assert decided.p_values["global_norm-50"] < 0.05 <= decided.p_values["zclip"]
    assert "cannot be told apart" in decided.sentence() and "recommended among them: global_norm-5, the one that" \
        " clips least (0.1% of steps)" in decided.sentence()


def test_among_equal_clipping_one_that_needs_no_threshold_is_recommended():
    decided = verdict.decide([_setting("global_norm-15", [0.957, 0.955, 0.959], clipped=0.0),
                              _setting("zclip", [0.956, 0.958, 0.954], clipped=0.0, threshold=None)])
    assert decided.best == "zclip" and "and needs no threshold" in decided.sentence()


def test_one_seed_names_the_top_setting_and_says_it_is_untested():
    decided = verdict.decide([_setting("global_norm-1", [0.96]), _setting("none", [0.95], clipped=0.0, threshold=None)])
    assert (decided.best, decided.winner, decided.p_values) == ("global_norm-1", False, {})
    assert "not tested against it" in decided.sentence() and "--seeds 0,1,2,3" in decided.sentence()


def test_unevaluated_settings_are_not_candidates():
    assert verdict.decide([_setting("agc", [None, None])]).best is None
    assert verdict.decide([_setting("agc", [None, None]), _setting("none", [0.9, 0.91])]).best == "none"


def test_settings_of_gathers_a_summarys_points_by_setting():
    def point(setting, seed, accuracy, clipped, diverged=None):
        return {"point": f"{setting}-seed{seed}", "setting": setting, "seed": seed, "strategy": setting.split("-")[0],
                "threshold": 1.0 if "-" in setting else None, "learning_rate": 0.1, "divisor": 50.0,
                "eval_accuracy": accuracy,
                "gradient_report": {"clipped_fraction": clipped, "diverged_at_step": diverged}}

    points = [point("none", 0, 0.1135, 0.0, 12), point("none", 1, 0.9, 0.0), point("global_norm-1", 0, 0.96, 0.01),
              point("global_norm-1", 1, 0.95, 0.03)]
    none, clipped = verdict.settings_of(points)
    assert (none.name, none.seeds, none.accuracies, none.diverged) == ("none", [0, 1], [0.1135, 0.9], [True, False])
    summary = clipped.to_dict()
    assert summary["eval_accuracy"] == pytest.approx({"mean": 0.955, "std": 0.00707107, "min": 0.95, "max": 0.96})
    assert summary["clipped_fractions"] == [0.01, 0.03] and summary["diverged_seeds"] == 0
    assert none.to_dict()["diverged_seeds"] == 1 and not none.needs_threshold and clipped.needs_threshold
