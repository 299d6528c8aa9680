"""gongkai channel for a service-hall LED screen controller that takes a text
playlist over HTTP. The channel is :class:`gongkai_led_screen.channel.LedScreenChannel`;
:mod:`gongkai_led_screen.simulator` is a loopback controller for tests and demos."""

__version__ = "0.1.0"
