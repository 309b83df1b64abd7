"""A tiny module under test for Warden's demo project."""


def add(a, b):
    return a + b


def mean(values):
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)
