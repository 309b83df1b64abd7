import pytest

from calc import add, mean


def test_add():
    assert add(2, 3) == 5


@pytest.mark.parametrize("values,expected", [([1, 2, 3], 2), ([4], 4)])
def test_mean(values, expected):
    assert mean(values) == expected


def test_mean_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        mean([])
