"""Training settings without torch: the settings dataclass, its presets and the names each field accepts.

Importing this is cheap, so the GUI can fill its form before torch is loaded; core.training re-exports all of it.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, replace

# Architecture names with their constructor defaults and a description (core.models builds them).
ARCHITECTURE_DEFAULTS: dict[str, dict] = {"tutorial": {}, "fastnet": {"width": 16},
                                          "digitnet": {"width": 32, "dropout": 0.1}}
ARCHITECTURE_DESCRIPTIONS: dict[str, str] = {
    "tutorial": "the tutorial's 2-conv CNN (5,258 parameters), ToTensor input",
    "fastnet": "3 conv + BatchNorm, each halving the image, linear head: cheap to train",
    "digitnet": "5 conv + BatchNorm, global average pooling, dropout",
}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")
# auto = bfloat16 autocast where the device computes it natively (CPUs with AVX512-BF16/AMX, recent GPUs), else fp32
PRECISIONS = ("fp32", "auto", "bf16")


class TrainingError(Exception):
    """Training could not run or diverged; the message says why in plain words, naming no front end's controls.

    `setting` names the TrainSettings field at fault, if one is, so a front end can point at its own control."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


@dataclass
class TrainSettings:
    """Everything that defines a training run. Presets below are instances of it."""

    preset: str = "custom"          # name shown in the UI and stored in weights files
    arch: str = "digitnet"          # a key of core.models.ARCHITECTURE_DEFAULTS
    arch_args: dict = field(default_factory=dict)  # constructor overrides, e.g. {"width": 16}
    epochs: int = 12                # full passes over the training split
    batch_size: int = 128           # images per optimizer step
    lr: float = 3e-3                # peak learning rate (OneCycle) or constant rate
    optimizer: str = "adamw"        # adam | adamw | sgd (with Nesterov momentum 0.9)
    schedule: str = "onecycle"      # onecycle | cosine | constant
    weight_decay: float = 5e-4      # L2 (adam, sgd) or decoupled decay (adamw)
    label_smoothing: float = 0.05   # CrossEntropyLoss label smoothing
    augment: bool = True            # random affine, stroke thickness and blur on each batch
    augment_strength: float = 1.0   # scales every augmentation range; 0 = none
    synthetic_digits: int = 0       # synthetic digits (core/synthetic_digits.py) added to the training split; the
                                    # form says "Synthetic digits"
    synthetic_font_share: float = 0.0  # share of those synthetic digits typed in handwriting fonts instead
                                       # (core/synthetic_digits.py; only fonts installed here; 0 = all pen-drawn)
    my_samples_share: float = 0.0   # share of the training split made of your saved samples, repeated; 0 = none
    init_weights: str | None = None  # start from this weights file (same architecture) instead of random weights
    val_fraction: float = 0.1       # stratified share of the 60k training images held out
    seed: int = 0                   # seeds model init, shuffling, augmentation and the split
    device: str = "auto"            # auto | cpu | cuda | mps
    precision: str = "fp32"         # fp32 | auto | bf16 (bfloat16 autocast for the forward pass; weights stay fp32)
    data_dir: str | None = None     # MNIST folder; None = the per-user data folder
    download: bool = True           # fetch MNIST from torchvision's mirrors when the files are missing
    threads: int | None = None      # torch intra-op threads; None = chosen by timing batches (core/autotune.py)

    def validate(self) -> None:
        """Raise TrainingError naming the first setting that cannot work."""
        checks = [
            (self.arch in ARCHITECTURE_DEFAULTS, f"unknown architecture {self.arch!r} (known: {', '.join(ARCHITECTURE_DEFAULTS)})"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.lr > 0 and math.isfinite(self.lr), "learning rate must be a positive number"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.weight_decay >= 0, "weight decay cannot be negative"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (self.augment_strength >= 0, "augmentation strength cannot be negative"),
            (self.synthetic_digits >= 0, "the number of pen-drawn digits cannot be negative"),
            (0 <= self.synthetic_font_share <= 1, "the share of synthetic digits typed in fonts must be in [0, 1]"),
            (0 <= self.my_samples_share < 1, "the share of your own samples must be in [0, 1)"),
            (0 <= self.val_fraction < 1, "validation share must be in [0, 1): a share, e.g. 0.1 holds out 10%"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, TrainSettings] = {
    # The tutorial's exact recipe: its model, ToTensor input, Adam 1e-3, batch 32, one epoch, no augmentation.
    "tutorial": TrainSettings(preset="tutorial", arch="tutorial", epochs=1, batch_size=32, lr=1e-3,
                              optimizer="adam", schedule="constant", weight_decay=0.0, label_smoothing=0.0,
                              augment=False, val_fraction=0.0),  # the tutorial trains on all 60k
    # >= 99.2% in less time than the tutorial's script: FastNet, one epoch, batch 64, OneCycle to 1e-2, label
    # smoothing 0.1, bfloat16 where the hardware has it, all 60k images (bench/train_speed.py).
    "quick": TrainSettings(preset="quick", arch="fastnet", epochs=1, batch_size=64, lr=1e-2, augment=False,
                           label_smoothing=0.1, val_fraction=0.0, precision="auto"),
    # The shipped default weights: full DigitNet, augmentation, OneCycle, and 8,000 synthetic digits: half
    # pen-drawn, half typed in handwriting fonts (open 4s, flagged 1s, curly 7s: styles MNIST has few of).
    "best": TrainSettings(preset="best", arch="digitnet", epochs=11, batch_size=128, lr=3e-3, augment=True,
                          synthetic_digits=8000, synthetic_font_share=0.5),
}


CUSTOM = "custom"  # the preset name of settings that are no preset's recipe
# Where the data comes from, what runs the training, and which draw of the randomness: changing these keeps a
# preset's name (quick with seed 3 is still quick; the run record keeps the seed).
NOT_RECIPE = ("data_dir", "download", "device", "threads", "my_samples_share", "seed")


def full_arch_args(arch: str, arch_args: dict) -> dict:
    """The constructor arguments with the architecture's defaults filled in ({"width": 16} for fastnet)."""
    return {**ARCHITECTURE_DEFAULTS[arch], **copy.deepcopy(arch_args)}


def with_arch(settings: TrainSettings, arch: str) -> TrainSettings:
    """The settings on `arch`: constructor arguments belong to the architecture they were given for, so another
    architecture starts from its own defaults. Never shares the arch_args dict with `settings`."""
    arch_args = copy.deepcopy(settings.arch_args) if arch == settings.arch else {}
    return replace(settings, arch=arch, arch_args=arch_args)


def preset_name(settings: TrainSettings, name: str) -> str:
    """`name` when `settings` follow preset `name`'s recipe (NOT_RECIPE fields aside), else "custom"."""
    if name not in PRESETS:
        return CUSTOM
    reference = replace(PRESETS[name], preset=name, **{f: getattr(settings, f) for f in NOT_RECIPE})
    reference = replace(reference, arch_args=full_arch_args(reference.arch, reference.arch_args))
    shown = replace(settings, preset=name, arch_args=full_arch_args(settings.arch, settings.arch_args))
    return name if shown == reference else CUSTOM


def preset(name: str, **overrides) -> TrainSettings:
    """A copy of a preset with some fields changed, named "custom" once its recipe differs from the preset's.

    A new `arch` without `arch_args` starts from that architecture's defaults (with_arch)."""
    if name not in PRESETS:
        raise TrainingError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    settings = with_arch(PRESETS[name], overrides.pop("arch", PRESETS[name].arch))
    settings = replace(settings, **copy.deepcopy(overrides))
    return replace(settings, preset=preset_name(settings, name))


def smoothed_loss_floor(label_smoothing: float, classes: int = 10) -> float:
    """The lowest cross-entropy a perfect classifier reaches when trained with label smoothing (the targets'
    entropy): 0.50 for 0.1 over 10 digits, so such a run's loss levels off there while its accuracy keeps rising."""
    on, off = 1 - label_smoothing + label_smoothing / classes, label_smoothing / classes
    return -(on * math.log(on) + (classes - 1) * off * math.log(off)) if label_smoothing > 0 else 0.0


def label_smoothing_note(label_smoothing: float) -> str:
    """Why a label-smoothed run's loss levels off high while its accuracy is higher; empty without smoothing."""
    if label_smoothing <= 0:
        return ""
    return (f"Label smoothing {label_smoothing:g} is on: the network is taught to keep a little probability on the "
            f"other digits, so its loss cannot fall below {smoothed_loss_floor(label_smoothing):.2f} even when every "
            "answer is right. Compare runs by accuracy, not by loss.")
