"""Raises a custom BaseException at import."""


class Boom(BaseException):
    pass


raise Boom("import-time boom")


def make():
    return None
