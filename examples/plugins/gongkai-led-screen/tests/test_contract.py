"""gongkai's contract suite, run against the LED screen channel."""

from gongkai_led_screen.channel import LedScreenChannel

from gongkai.testing import ChannelContract


class TestLedScreenContract(ChannelContract):
    channel_class = LedScreenChannel
    config = {"url": "http://led.example.test/api", "token": "t0ken-for-tests-only"}
    http = True
