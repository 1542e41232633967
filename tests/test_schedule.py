"""The wavefront schedule: which rows of each tile a step holds, for all tiles at once."""
import numpy as np
import pytest

from pxcodec.schedule import step_count, step_rows


@pytest.mark.parametrize("r", [1, 2, 3])
def test_step_rows_of_many_tiles_are_each_tiles_pixels_of_that_step(r):
    """Tiles of mixed sizes (narrower than r + 1 columns, one row, taller than wide) share
    the steps; each step holds exactly the rows y with 0 ≤ t − (r+1)·y < width of each tile,
    and over all steps every pixel of every tile comes exactly once."""
    heights = np.array([1, 5, 17, 4, 9])
    widths = np.array([7, 1, 3, 20, 2])
    seen = [np.zeros((h, w), dtype=int) for h, w in zip(heights, widths)]
    for t in range(max(step_count(h, w, r) for h, w in zip(heights, widths)) + 2):
        y0, y1 = step_rows(t, heights, widths, r)
        for i, (h, w) in enumerate(zip(heights, widths)):
            expected = [y for y in range(h) if 0 <= t - (r + 1) * y < w]
            assert list(range(y0[i], y1[i])) == expected
            for y in expected:
                seen[i][y, t - (r + 1) * y] += 1
    assert all((s == 1).all() for s in seen)
