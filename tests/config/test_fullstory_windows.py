"""The signature window and the dedup window agree: a replay the signature check still accepts is
caught as a duplicate, by default and when the window is widened."""

from __future__ import annotations

from fs2split.config.settings import Settings


def test_by_default_a_signature_may_be_six_hours_old_and_deliveries_are_remembered_as_long() -> None:
    settings = Settings.from_env({})

    assert settings.signature_tolerance_s == 6 * 3600
    assert settings.dedup_ttl_s >= settings.signature_tolerance_s


def test_a_wider_signature_window_widens_the_default_dedup_window_with_it() -> None:
    settings = Settings.from_env({"FS2SPLIT_SIGNATURE_TOLERANCE_SECONDS": "86400"})

    assert settings.dedup_ttl_s == 86400


def test_a_narrower_signature_window_keeps_six_hours_of_dedup() -> None:
    assert Settings.from_env({"FS2SPLIT_SIGNATURE_TOLERANCE_SECONDS": "300"}).dedup_ttl_s == 6 * 3600


def test_an_explicit_dedup_window_is_kept() -> None:
    settings = Settings.from_env({"FS2SPLIT_DEDUP_TTL_SECONDS": "60", "FS2SPLIT_SIGNATURE_TOLERANCE_SECONDS": "86400"})

    assert settings.dedup_ttl_s == 60
