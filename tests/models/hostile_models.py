"""Model factories that misbehave, for the user-code boundary tests (tests/test_untrusted_code.py).

Every model is built for iris (4 features, 3 classes) or an audit input of shape (2, 4).
"""

import sys

from torch import nn


class Custom(BaseException):
    """Not an Exception: a bare BaseException subclass."""


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


def raise_custom():
    raise Custom("custom base exception")


def raise_exit():
    sys.exit(3)


class _NaN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) * float("nan")


def nan_logits():
    return _NaN()


class _None(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        self.fc(x)
        return None


def returns_none():
    return _None()


class _Late(nn.Module):
    """Fine for its first forward passes, then raises (during training)."""

    def __init__(self, error):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.calls = 0
        self.error = error

    def forward(self, x):
        self.calls += 1
        if self.calls > 3:
            raise self.error
        return self.fc(x)


def late_value_error():
    return _Late(ValueError("forward broke in epoch 1"))


def late_keyboard_interrupt():
    return _Late(KeyboardInterrupt())


def late_custom():
    return _Late(Custom("late custom"))
