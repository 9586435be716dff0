"""strcli.view.framing: the viewer's first view of the world frames the people.

Pure geometry; the served viewer is tested on a real reconstruction in tests/test_export.py.
"""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from strcli.view.framing import ASPECT, BODY_HEIGHT, KEEP, bulk, frame_people, project

CANVAS = (round(700 * ASPECT), 700)  # pixels: the 3D canvas of a 1000 x 700 window beside viser's sidebar
# pixels: the least height of a body at the middle of the framed people: 21.7 px measured with every
# person in view, two of them 45-56 m away and 20 m to a side (40 px with the bulk alone)
TALL = 20


def _camera(yaw_deg: float = 0.0, pitch_deg: float = -10.0) -> np.ndarray:
    """A camera -> world rotation (camera x right, y down, z forward) of a camera looking
    along the world's -z, turned `yaw_deg` left and tilted `pitch_deg` up."""
    looking_down_minus_z = np.diag([1.0, -1.0, -1.0])  # x right, y down, z forward -> world
    turn = Rotation.from_euler("yx", [yaw_deg, pitch_deg], degrees=True).as_matrix()
    return turn @ looking_down_minus_z


def _bodies(roots: np.ndarray) -> np.ndarray:
    """Each root's body, bottom and top: (2 K, 3)."""
    offsets = np.array([[0.0, -BODY_HEIGHT / 2, 0.0], [0.0, BODY_HEIGHT / 2, 0.0]])
    return (roots[:, None] + offsets[None]).reshape(-1, 3)


def _inside(pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
    return (depth > 0) & (pixels[:, 0] >= 0) & (pixels[:, 0] <= CANVAS[0]) & (pixels[:, 1] >= 0) & (
        pixels[:, 1] <= CANVAS[1])


def _spread_people(seed: int = 0) -> np.ndarray:
    """Roots (K, 3) of 12 walkers in front of a camera at (0, 1.6, 8) looking along -z: most
    6-25 m from it, two far ones at 45-56 m (pedestrians.avi's spread), 40 frames each."""
    rng = np.random.default_rng(seed)
    roots = []
    for k in range(12):
        distance = rng.uniform(45, 56) if k >= 10 else rng.uniform(6, 25)
        start = np.array([rng.uniform(-0.4, 0.4) * distance, 0.95, 8.0 - distance])
        step = np.array([rng.uniform(-0.05, 0.05), 0.0, rng.uniform(-0.05, 0.05)])
        roots.append(start + step * np.arange(40)[:, None])
    return np.concatenate(roots)


def _middles(roots: np.ndarray) -> np.ndarray:
    """Each walker's median root (12, 3) of `_spread_people`'s roots."""
    return np.median(roots.reshape(12, 40, 3), axis=1)


@pytest.mark.parametrize("yaw", [0.0, 40.0, -120.0])
def test_the_first_view_frames_every_person_and_the_bulk_at_a_useful_size(yaw):
    turn = Rotation.from_euler("y", yaw, degrees=True).as_matrix()
    roots = _spread_people() @ turn.T
    middles = _middles(roots)
    view = frame_people(roots, turn @ _camera(), middles=middles)
    pixels, depth = project(_bodies(roots), view, CANVAS)
    inside = _inside(pixels, depth).reshape(-1, 2).all(1)  # the whole body, bottom and top
    assert inside.mean() >= KEEP, inside.mean()
    assert inside[: 10 * 40].mean() >= 0.9  # the near walkers
    # every person, the two far ones too, whole in view at their median place
    pixels, depth = project(_bodies(middles), view, CANVAS)
    assert _inside(pixels, depth).all()
    # a body at the middle of the framed people is not a few pixels tall
    middle = np.median(bulk(roots), axis=0)
    (bottom, top), _ = project(_bodies(middle[None]), view, CANVAS)
    assert bottom[1] - top[1] > TALL, bottom[1] - top[1]
    # from above the floor, beside the camera (not behind the people), looking down a little
    assert view.position[1] > 2.0
    look = (view.look_at - view.position) / np.linalg.norm(view.look_at - view.position)
    assert -0.6 < look[1] < -0.2
    heading = turn @ np.array([0.0, 0.0, -1.0])  # the camera's heading on the floor
    assert look @ heading > 0.5


def test_the_bulk_alone_leaves_a_far_person_out():
    """Why the medians are framed too: the bulk of all positions drops the far walkers."""
    roots = _spread_people()
    view = frame_people(roots, _camera())
    pixels, depth = project(_bodies(_middles(roots)), view, CANVAS)
    assert not _inside(pixels, depth).all()


def test_every_root_is_in_view_when_all_are_kept():
    roots = _spread_people(1)
    view = frame_people(roots, _camera(), keep=1.0)
    pixels, depth = project(_bodies(roots), view, CANVAS)
    assert _inside(pixels, depth).all()
    # and the framing is tight: some body reaches the margin's edge (0.9 of the half-size)
    reach = np.abs(pixels - np.array(CANVAS) / 2) / (np.array(CANVAS) / 2)
    assert reach.max() > 0.85, reach.max()


def test_one_still_person_is_framed_large():
    roots = np.tile([[2.0, 0.95, -5.0]], (30, 1))
    view = frame_people(roots, _camera())
    (bottom, top), depth = project(_bodies(roots[:1]), view, CANVAS)
    assert depth.min() > 0
    assert bottom[1] - top[1] > 0.5 * CANVAS[1]  # half the canvas tall, at least
    assert np.allclose(view.look_at, [2.0, 0.95, -5.0])


def test_bulk_drops_the_far_outliers():
    roots = np.concatenate([np.zeros((90, 3)) + [0, 1, -10], np.zeros((10, 3)) + [0, 1, -60]])
    kept = bulk(roots, 0.8)
    assert len(kept) >= 80 and (kept[:, 2] == -10).all()
    with pytest.raises(ValueError):
        frame_people(np.zeros((0, 3)), _camera())
    assert math.isclose(len(bulk(roots, 1.0)), 100)


def test_an_unknown_frame_is_refused_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from strcli.cli.main import app

    result = CliRunner().invoke(app, ["view", str(tmp_path), "--frame", "up"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: --frame up: choose world or camera."]


def test_every_track_colour_has_a_name():
    """The viewer's track list names each track's colour (its checkboxes carry none)."""
    from strcli.config import TRACK_COLOUR_NAMES, TRACK_COLOURS
    from strcli.view.viewer import colour_name

    assert len(TRACK_COLOUR_NAMES) == len(TRACK_COLOURS) == len(set(TRACK_COLOUR_NAMES))
    assert [colour_name(k) for k in (0, 1, 9)] == ["blue", "orange", "orange"]
    # each name fits its colour's hue (degrees)
    import colorsys

    for (r, g, b), name in zip(TRACK_COLOURS, TRACK_COLOUR_NAMES):
        hue = 360 * colorsys.rgb_to_hsv(r, g, b)[0]
        expected = {"blue": 215, "orange": 25, "green": 125, "pink": 340, "lilac": 265, "yellow": 50, "teal": 180,
                    "tan": 35}[name]
        assert min(abs(hue - expected), 360 - abs(hue - expected)) < 20, (name, hue)
