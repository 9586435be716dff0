"""Triangle meshes -> pixels: a z-buffer rasterizer in plain PyTorch (CPU or GPU).

No OpenGL, EGL or OSMesa: it runs headless wherever torch runs and installs from pip
alone. Every triangle's bounding box is enumerated as candidate pixels in one batched
tensor op, barycentric coordinates decide coverage at pixel centres, depth is
interpolated perspective-correctly (1/z is linear in the image), and the nearest
fragment of every pixel wins through one `scatter_reduce(amin)` on a key that packs the
depth with the face index. So bodies in front hide bodies behind, and a body's own arm in
front of its torso is drawn in front. docs/rendering.md compares this with the other
candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from strcli.body.camera import Intrinsics

_NEAR = 0.05  # metres; triangles closer to the camera than this are not drawn
_DEPTH_SCALE = 1 << 20  # depth resolution of the packed key: about 1 micrometre per metre
_FACE_BITS = 22  # up to 4M faces per frame


@dataclass(frozen=True)
class Fragments:
    """The visible surface: one row per covered pixel (M rows)."""

    pixel: Tensor  # (M,) int64 y * width + x
    face: Tensor  # (M,) int64 index into the faces that were rasterized
    bary: Tensor  # (M, 3) perspective-correct barycentric coordinates in that face
    depth: Tensor  # (M,) metres


def project_vertices(vertices: Tensor, intrinsics: Intrinsics) -> tuple[Tensor, Tensor]:
    """(V, 3) camera-frame points -> (V, 2) pixel coordinates and (V,) depth."""
    z = vertices[:, 2]
    centre = vertices.new_tensor([intrinsics.width / 2, intrinsics.height / 2])
    return intrinsics.focal * vertices[:, :2] / z.clamp_min(1e-6)[:, None] + centre, z


def rasterize(vertices: Tensor, faces: Tensor, intrinsics: Intrinsics, cull_back: bool = True) -> Fragments:
    """vertices (V, 3) in the camera frame, faces (F, 3) int64 -> the visible fragments of
    the W x H image `intrinsics` describes.

    `cull_back` skips triangles facing away from the camera, which halves the work and
    changes nothing for closed meshes wound counter-clockwise seen from outside (SMPL's
    convention: such a triangle has a negative signed area in the y-down image)."""
    width, height = intrinsics.width, intrinsics.height
    device = vertices.device
    xy, z = project_vertices(vertices.float(), intrinsics)
    flat = faces.reshape(-1)
    tri = xy.index_select(0, flat).view(-1, 3, 2)  # (F, 3, 2)
    tz = z.index_select(0, flat).view(-1, 3)  # (F, 3)
    lo = tri.min(dim=1).values
    hi = tri.max(dim=1).values
    x0, y0, x1, y1, x2, y2 = tri[:, 0, 0], tri[:, 0, 1], tri[:, 1, 0], tri[:, 1, 1], tri[:, 2, 0], tri[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    keep = ((tz > _NEAR).all(dim=1) & (area < -1e-9 if cull_back else area.abs() > 1e-9)
            & (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width) & (lo[:, 1] < height))
    face_ids = torch.nonzero(keep).squeeze(1)
    tri, tz, area = tri.index_select(0, face_ids), tz.index_select(0, face_ids), area.index_select(0, face_ids)
    x0, y0, x1, y1, x2, y2 = tri[:, 0, 0], tri[:, 0, 1], tri[:, 1, 0], tri[:, 1, 1], tri[:, 2, 0], tri[:, 2, 1]
    # Each barycentric coordinate is linear in the pixel position, and so is b_i / z_i (the
    # perspective-correct weight): per face, [b0/z0, b1/z1, b2/z2] = M @ [x, y, 1].
    rows = [torch.stack(((y1 - y2), (x2 - x1), (x1 * y2 - x2 * y1)), 1),
            torch.stack(((y2 - y0), (x0 - x2), (x2 * y0 - x0 * y2)), 1)]
    rows.append(torch.stack((-(rows[0][:, 0] + rows[1][:, 0]), -(rows[0][:, 1] + rows[1][:, 1]),
                             area - rows[0][:, 2] - rows[1][:, 2]), 1))
    coeff = (torch.stack(rows, 1) / area[:, None, None] * (1 / tz)[:, :, None]).reshape(-1, 9)  # (F', 9)
    # Scanlines: every pixel row whose centre lies within a face's vertical extent, then the
    # exact run of pixel centres the face covers on that row (no candidate is wasted).
    first = (lo[face_ids, 1] - 0.5).ceil().clamp_min(0).long()
    last = (hi[face_ids, 1] - 0.5).floor().clamp_max(height - 1).long()
    runs = (last - first + 1).clamp_min(0)  # (F',) rows per face
    row_face = torch.repeat_interleave(torch.arange(len(face_ids), device=device), runs)  # (R,)
    row_y = first.index_select(0, row_face) + torch.arange(len(row_face), device=device) - (
        torch.cumsum(runs, 0) - runs).index_select(0, row_face)
    corners = tri.index_select(0, row_face)  # (R, 3, 2)
    ax, ay = corners[:, :, 0], corners[:, :, 1]  # edge k runs from corner k to corner k+1
    bx, by = ax.roll(-1, dims=1), ay.roll(-1, dims=1)
    t = (row_y.float()[:, None] + 0.5 - ay) / (by - ay)  # (R, 3); inf or nan for level edges
    crossed = (t >= 0) & (t <= 1)
    x = ax + t * (bx - ax)
    left = torch.where(crossed, x, torch.full_like(x, float("inf"))).min(dim=1).values
    right = torch.where(crossed, x, torch.full_like(x, float("-inf"))).max(dim=1).values
    start = (left - 0.5).ceil().clamp_min(0)
    stop = (right - 0.5).floor().clamp_max(width - 1)
    length = (stop - start + 1).clamp_min(0).nan_to_num(0).long()  # (R,) pixels in each run
    which_row = torch.repeat_interleave(torch.arange(len(row_y), device=device), length)  # (M',)
    px = start.long().index_select(0, which_row) + torch.arange(len(which_row), device=device) - (
        torch.cumsum(length, 0) - length).index_select(0, which_row)
    py = row_y.index_select(0, which_row)
    which = row_face.index_select(0, which_row)
    cx, cy = px.float() + 0.5, py.float() + 0.5  # pixel centres
    c = coeff.index_select(0, which)  # (M', 9)
    inv = torch.stack([c[:, 3 * i] * cx + c[:, 3 * i + 1] * cy + c[:, 3 * i + 2] for i in range(3)], 1)
    inv_depth = inv[:, 0] + inv[:, 1] + inv[:, 2]
    depth = 1 / inv_depth
    # The z-buffer spans only the box the candidates cover, not the whole frame.
    if len(px):
        left, top = int(px.min()), int(py.min())
        span = int(px.max()) - left + 1
        local = (py - top) * span + (px - left)
        size = (int(py.max()) - top + 1) * span
    else:
        left = top = span = size = 0
        local = px
    key = (depth * _DEPTH_SCALE).long() * (1 << _FACE_BITS) + which
    nearest = torch.full((size,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=device)
    nearest.scatter_reduce_(0, local, key, reduce="amin")
    pixel = py * width + px
    won = torch.nonzero(nearest.index_select(0, local) == key).squeeze(1)
    inv_depth = inv_depth.index_select(0, won)
    inv = inv.index_select(0, won).clamp_min(0)  # a centre on an edge may be a rounding error outside
    return Fragments(pixel=pixel.index_select(0, won), face=face_ids.index_select(0, which.index_select(0, won)),
                     bary=inv / inv.sum(dim=1, keepdim=True), depth=1 / inv_depth)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """(V, 3) unit normals: the area-weighted mean of the normals of the faces around."""
    v = vertices[faces]  # (F, 3, 3)
    face_normals = torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1)  # length = 2 area
    normals = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), face_normals.repeat_interleave(3, 0))
    return torch.nn.functional.normalize(normals, dim=1)
