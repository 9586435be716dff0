import cv2
import numpy as np
import torch

from strcli.config import IMAGENET_MEAN, IMAGENET_STD
from strcli.road.crops import crop_frame, crop_images, square_boxes


def test_square_boxes_enlarge_the_longer_side():
    boxes = square_boxes(torch.tensor([[10.0, 20.0, 50.0, 120.0]]), scale=1.2)
    assert torch.allclose(boxes.centre, torch.tensor([[30.0, 70.0]]))
    assert torch.allclose(boxes.side, torch.tensor([120.0]))
    assert torch.allclose(boxes.corners, torch.tensor([[-30.0, 10.0, 90.0, 130.0]]))


def smooth_image(h=240, w=320):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 / w, y * 255 / h, (x + y) * 255 / (w + h)], -1).astype(np.uint8)


def test_crop_inside_the_image_matches_a_resize():
    image = smooth_image()
    boxes = square_boxes(torch.tensor([[100.0, 40.0, 212.0, 152.0]]), scale=1.0)  # 112 px square
    crop = crop_images(torch.from_numpy(image)[None], torch.tensor([0]), boxes, size=56, normalise=False)
    expected = cv2.resize(image[40:152, 100:212], (56, 56), interpolation=cv2.INTER_AREA) / 255
    assert crop.shape == (1, 3, 56, 56)
    assert np.abs(crop[0].permute(1, 2, 0).numpy() - expected).max() < 0.02


def test_each_crop_pixel_is_one_bilinear_sample_at_its_centre_as_tcmr_crops():
    # TCMR/VIBE crop with cv2.warpAffine(INTER_LINEAR): point samples, no averaging. A noisy
    # image shrunk 4x tells point sampling from area averaging.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    x1, y1, side, size = 37.0, 21.0, 224.0, 56
    boxes = square_boxes(torch.tensor([[x1, y1, x1 + side, y1 + side]]), scale=1.0)
    crop = crop_images(torch.from_numpy(image)[None], torch.tensor([0]), boxes, size=size, normalise=False)
    centres = (np.arange(size) + 0.5) * side / size - 0.5  # pixel centres, in source pixels
    map_x, map_y = np.meshgrid(x1 + centres, y1 + centres)
    expected = cv2.remap(image.astype(np.float32), map_x.astype(np.float32), map_y.astype(np.float32),
                         cv2.INTER_LINEAR) / 255
    got = crop[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() < 0.02  # cv2 interpolates in 1/32 px steps
    area = cv2.resize(image[21:245, 37:261], (size, size), interpolation=cv2.INTER_AREA) / 255
    assert np.abs(got - area).mean() > 0.1  # not an average of the pixels under each


def test_boxes_leaving_the_image_are_padded_black():
    image = np.full((100, 100, 3), 200, np.uint8)
    boxes = square_boxes(torch.tensor([[-50.0, 0.0, 50.0, 100.0]]), scale=1.0)  # left half outside
    crop = crop_images(torch.from_numpy(image)[None], torch.tensor([0]), boxes, size=20, normalise=False)[0]
    assert crop[:, :, :9].abs().max() < 1e-6  # outside: zero
    assert torch.allclose(crop[:, :, 11:], torch.full_like(crop[:, :, 11:], 200 / 255), atol=1e-4)


def test_batch_picks_each_boxes_frame_and_normalises():
    frames = torch.stack([torch.full((64, 64, 3), v, dtype=torch.uint8) for v in (0, 255)])
    boxes = square_boxes(torch.tensor([[8.0, 8.0, 56.0, 56.0]] * 3), scale=1.0)
    crops = crop_images(frames, torch.tensor([1, 0, 1]), boxes, size=16)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    assert torch.allclose(crops[0, :, 5, 5], (1 - mean) / std, atol=1e-5)
    assert torch.allclose(crops[1, :, 5, 5], (0 - mean) / std, atol=1e-5)
    assert torch.allclose(crops[2], crops[0])


def test_crop_frame_equals_cropping_the_whole_frame():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    xyxy = torch.tensor([[30.0, 20.0, 60.0, 90.0],  # inside
                         [-40.0, 50.0, 10.0, 130.0],  # over the bottom-left corner
                         [150.5, 3.25, 170.0, 40.0],  # over the right edge
                         [300.0, 300.0, 340.0, 380.0]])  # wholly outside: black
    boxes = square_boxes(xyxy)
    whole = crop_images(image[None], torch.zeros(4), boxes, size=32)
    part = crop_frame(image, boxes, size=32)
    assert torch.allclose(part, whole, atol=1e-5)
    assert torch.equal(crop_frame(image, boxes, size=32, device=torch.device("cpu")), part)
    black = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(part[3], black[:, None, None].expand(3, 32, 32), atol=1e-5)
