"""Masking personal numbers: one policy, check digits, no false positives."""

from __future__ import annotations

import pytest

from gongkai.config import PrivacySettings
from gongkai.plugins.privacy import id_number_valid, mask_text


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_valid_id_numbers(number):
    assert id_number_valid(number)


def test_invalid_check_digit_is_not_an_id():
    assert not id_number_valid("440524188001010015")
    text = "订单号440524188001010015"
    assert mask_text(text, PrivacySettings()) == text


def test_masks_ids_phones_and_cards():
    text = "身份证11010519491231002X，手机13981234567，卡号6222021234567890128"
    masked = mask_text(text, PrivacySettings())
    assert masked == "身份证110105********002X，手机139****4567，卡号622202*********0128"


def test_policy_is_configurable_and_keeps_listed_numbers():
    policy = PrivacySettings(id_keep=(2, 3), keep_numbers=("13800001111",))
    masked = mask_text("11010519491231002X 13800001111 13912345678", policy)
    assert masked == "11*************02X 13800001111 139****5678"


def test_numbers_inside_longer_digit_runs_are_left_alone():
    text = "编号2026139812345678901"
    assert mask_text(text, PrivacySettings()) == text
