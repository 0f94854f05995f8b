"""The training settings form: one widget per field of core.training.TrainSettings; a preset fills them all."""
from __future__ import annotations

from dataclasses import replace
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QToolButton, QWidget)

from core.paths import mnist_dir
from core.settings import (ARCHITECTURE_DEFAULTS, ARCHITECTURE_DESCRIPTIONS, CUSTOM, DEVICES, OPTIMIZERS,
                           PRECISIONS, PRESETS, SCHEDULES, TrainSettings, full_arch_args, preset_name, with_arch)

MNIST_ONLY, WITH_MY_SAMPLES = "MNIST", "MNIST + my samples"
# Your samples are repeated until they make up this share of the training split: enough to learn your handwriting
# from ~10 samples a digit, little enough that MNIST still dominates (about 3,000 of 63,000 images).
MY_SAMPLES_SHARE = 0.05

# Shown under the preset box, in the words of a learner comparing runs.
PRESET_DESCRIPTIONS: dict[str, str] = {
    "tutorial": "The PyTorch tutorial's exact recipe: its small 2-layer CNN, Adam, batch 32, one epoch, no "
                "augmentation. About 97-98% on the test images.",
    "quick": "FastNet for one epoch with a rising-then-falling learning rate: about 99.2% in well under a minute "
             "on a laptop. Its label smoothing keeps the loss near 0.5, so it looks higher than the tutorial's.",
    "best": "DigitNet, 11 epochs, augmentation and 8,000 synthetic digits, half pen-drawn, half typed in "
            "handwriting fonts: about 99.6% (the shipped weights are this recipe continued from the previous ones; "
            "slow on a CPU, fast on a GPU).",
    CUSTOM: "Your own recipe: no preset's settings.",
}
# Smoothing s over 10 classes: the loss cannot fall below the entropy of the smoothed target, about 0.50 for s=0.1.
LABEL_SMOOTHING_TIP = ("Label smoothing: the network is trained towards 90% sure (at 0.1) instead of 100% sure, which "
                       "makes it less overconfident. The loss then cannot fall below about 0.5 (at 0.1; about 0.29 at "
                       "0.05), so a run with smoothing shows a higher loss than one without while being as accurate: "
                       "compare accuracies, not losses. 0 = off; larger = softer targets.")
# The recipe fields the form shows, by their names on the form (for "custom (from quick): ... changed").
SHOWN_FIELDS: dict[str, str] = {
    "arch": "architecture", "epochs": "epochs", "batch_size": "batch size", "lr": "learning rate",
    "optimizer": "optimizer", "schedule": "schedule", "weight_decay": "weight decay",
    "label_smoothing": "label smoothing", "augment": "augmentation", "augment_strength": "augmentation strength",
    "synthetic_digits": "synthetic digits", "val_fraction": "validation share", "seed": "seed",
    "precision": "precision"}


def _as_shown(field: str, value: object) -> str:
    """A setting in the unit its field shows: the validation share in percent (0.1 -> "10%"), numbers short."""
    if field == "val_fraction":
        return f"{100 * value:g}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainForm(QWidget):
    """Filled from core.settings (no torch needed), so it is ready as soon as the window shows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._base: TrainSettings | None = None  # the last preset applied: supplies the fields not shown here
        self._filling = False
        self.preset = QComboBox()
        self.preset.setToolTip("Starting settings: tutorial = the tutorial's exact recipe; quick = 99.2% "
                               "in under a minute; best = the shipped default weights' recipe (slow on a CPU). "
                               "Changing any field below makes it custom, shown as \"custom (from quick)\".")
        self.preset_description = QLabel()
        self.preset_description.setObjectName("presetDescription")
        self.preset_description.setWordWrap(True)
        self.arch = QComboBox()
        self.arch.setToolTip("The network's layout. Larger networks learn more but train slower; hover over each "
                             "choice for what it is.")
        self.width_spin = QSpinBox()
        self.width_spin.setRange(2, 256)
        self.width_spin.setToolTip("Channels (feature detectors) in the first layer; they double in deeper layers. "
                                   "Larger can learn more and trains slower; smaller is faster.")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setToolTip("Epochs: full passes over all the training images. More usually learn more and take "
                               "proportionally longer; too many can overfit without augmentation.")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 8192)
        self.batch_size.setToolTip("Images the network looks at before each update of its weights. Larger is faster "
                                   "per image (until memory runs out) but makes fewer, smoother updates per epoch.")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 10.0)
        self.lr.setSingleStep(0.0005)
        self.lr.setToolTip("Learning rate: how big each update of the weights is (the peak for the onecycle and "
                           "cosine schedules). Larger learns faster until training becomes unstable and the loss "
                           "jumps up; smaller is steadier but slower.")
        self.optimizer = QComboBox()
        self.optimizer.setToolTip("How the weights are updated from the gradients: adam adapts each weight's step; "
                                  "adamw is adam with weight decay done right; sgd uses Nesterov momentum 0.9.")
        self.augment = QCheckBox("Random shifts, rotations, scale and stroke thickness")
        self.augment.setToolTip("Each batch sees slightly moved, turned, resized, thicker or thinner digits: the "
                                "network copes better with drawings unlike MNIST's; training needs more epochs.")
        self.pen_digits = QSpinBox()
        self.pen_digits.setRange(0, 1_000_000)
        self.pen_digits.setSingleStep(1000)
        self.pen_digits.setToolTip("Synthetic digits added to the training images: pen-drawn ones teach the "
                                   "network how mouse-drawn digits look; the best preset types half of them in "
                                   "handwriting fonts (open 4s, flagged 1s, curly 7s), where those fonts are "
                                   "installed. More = closer to your drawings and a longer epoch.")
        self.training_data = QComboBox()
        self.training_data.setObjectName("trainData")
        self.training_data.addItems([MNIST_ONLY, WITH_MY_SAMPLES])
        self.training_data.setToolTip("MNIST + my samples: your saved samples (My digits tab), repeated to make up "
                                      f"{100 * MY_SAMPLES_SHARE:.0f}% of the training images, so the network learns "
                                      "your handwriting too")
        self.val_share = QSpinBox()
        self.val_share.setRange(0, 50)
        self.val_share.setSuffix(" %")
        self.val_share.setToolTip("Share of the 60,000 training images held out (same share of every digit) "
                                  "to measure validation loss and accuracy after each epoch (the settings' "
                                  "val_fraction; the command line's --val-share takes a share or a percentage: "
                                  "0.1 or 10%)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Starting point of the randomness (initial weights, shuffling, augmentation). Same seed "
                             "and settings: the same run, number for number; another seed shows how much is luck.")
        self.device = QComboBox()
        self.device.setToolTip("Where training runs: auto = a GPU when there is one, else the CPU.")
        self.precision = QComboBox()
        self.precision.setToolTip("fp32: full precision; bf16: bfloat16 arithmetic in the forward pass (weights "
                                  "stay fp32); auto: bf16 only where the CPU or GPU computes it natively and a quick timing shows it is "
                                  "faster for this model, else fp32")
        self.data_dir = QLineEdit()
        self.data_dir.setObjectName("dataFolder")
        self.data_dir.setClearButtonEnabled(True)
        self.data_dir.setToolTip("The folder holding MNIST (the four files train/t10k-images/labels, or torchvision's "
                                 "MNIST/raw layout inside it). Empty = the per-user data folder.")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose the MNIST folder")
        self.schedule = QComboBox()
        self.schedule.setToolTip("How the learning rate changes during the run: onecycle rises to the learning rate "
                                 "then falls to almost 0 (fast, the presets' choice); cosine falls from it; constant "
                                 "keeps it (the tutorial's).")
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(0.0001)
        self.weight_decay.setToolTip("Weight decay pulls every weight a little towards 0 at each step. Larger = a "
                                     "simpler network that overfits less, until it cannot learn enough; 0 = off.")
        self.label_smoothing = QDoubleSpinBox()
        self.label_smoothing.setDecimals(3)
        self.label_smoothing.setRange(0.0, 0.9)
        self.label_smoothing.setSingleStep(0.05)
        self.label_smoothing.setToolTip(LABEL_SMOOTHING_TIP)
        self.augment_strength = QDoubleSpinBox()
        self.augment_strength.setDecimals(2)
        self.augment_strength.setRange(0.0, 3.0)
        self.augment_strength.setSingleStep(0.1)
        self.augment_strength.setToolTip("Scales every augmentation range (shift, rotation, scale, thickness): 1 = "
                                         "the usual amount, larger = wilder digits, 0 = none. Only with augmentation "
                                         "on.")
        self.advanced_button = QToolButton()
        self.advanced_button.setObjectName("advancedToggle")
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolTip("Show or hide the schedule, weight decay, label smoothing and augmentation "
                                        "strength")
        self.advanced = QWidget()
        self.advanced.setObjectName("advancedSettings")
        advanced_form = QFormLayout(self.advanced)
        advanced_form.setContentsMargins(0, 0, 0, 0)
        advanced_form.addRow("Schedule", self.schedule)
        advanced_form.addRow("Weight decay", self.weight_decay)
        advanced_form.addRow("Label smoothing", self.label_smoothing)
        advanced_form.addRow("Augmentation strength", self.augment_strength)
        self.advanced.setVisible(False)
        data_row = QHBoxLayout()
        data_row.setContentsMargins(0, 0, 0, 0)
        data_row.addWidget(self.data_dir, 1)
        data_row.addWidget(browse)

        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow(self.preset_description)
        form.addRow("Architecture", self.arch)
        form.addRow("Width", self.width_spin)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Augmentation", self.augment)
        form.addRow("Synthetic digits", self.pen_digits)
        form.addRow("Training data", self.training_data)
        form.addRow("Validation share", self.val_share)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("MNIST folder", data_row)
        form.addRow(self.advanced_button)
        form.addRow(self.advanced)
        self._label_tooltips(form)
        self._label_tooltips(advanced_form)
        self.setEnabled(False)

        browse.clicked.connect(self.on_browse_clicked)
        self.advanced_button.toggled.connect(self.on_advanced_button_toggled)
        self.preset.currentTextChanged.connect(self.on_preset_current_text_changed)
        self.arch.currentTextChanged.connect(self.on_arch_current_text_changed)
        for spin in (self.width_spin, self.epochs, self.batch_size, self.lr, self.pen_digits, self.val_share,
                     self.seed, self.weight_decay, self.label_smoothing, self.augment_strength):
            spin.valueChanged.connect(self.on_field_edited)
        for combo in (self.optimizer, self.device, self.precision, self.training_data, self.schedule):
            combo.currentTextChanged.connect(self.on_field_edited)
        self.augment.toggled.connect(self.on_field_edited)
        self._populate()

    def _populate(self) -> None:
        """Fill the choices from core.settings (torch-free, so before the model loads) and apply the quick preset."""
        self._filling = True
        self.preset.addItems([*PRESETS, CUSTOM])
        for name, description in ARCHITECTURE_DESCRIPTIONS.items():
            self.arch.addItem(name)
            self.arch.setItemData(self.arch.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        self.optimizer.addItems(OPTIMIZERS)
        self.schedule.addItems(SCHEDULES)
        self.device.addItems(DEVICES)
        self.precision.addItems(PRECISIONS)
        self.data_dir.setPlaceholderText(f"{mnist_dir()} (downloaded there if missing)")
        self._filling = False
        self.set_settings(PRESETS["quick"])
        self.setEnabled(True)

    # ------------------------------------------------------------ settings <-> fields
    def set_settings(self, settings: TrainSettings) -> None:
        """Show these settings (the data folder is kept unless the settings name one)."""
        self._filling = True
        self._base = settings
        self.arch.setCurrentText(settings.arch)
        self._show_width(settings.arch, settings.arch_args)
        self.epochs.setValue(settings.epochs)
        self.batch_size.setValue(settings.batch_size)
        self.lr.setValue(settings.lr)
        self.optimizer.setCurrentText(settings.optimizer)
        self.schedule.setCurrentText(settings.schedule)
        self.weight_decay.setValue(settings.weight_decay)
        self.label_smoothing.setValue(settings.label_smoothing)
        self.augment.setChecked(settings.augment)
        self.augment_strength.setValue(settings.augment_strength)
        self.pen_digits.setValue(settings.synthetic_digits)
        self.training_data.setCurrentText(WITH_MY_SAMPLES if settings.my_samples_share > 0 else MNIST_ONLY)
        self.val_share.setValue(round(100 * settings.val_fraction))
        self.seed.setValue(settings.seed)
        self.device.setCurrentText(settings.device)
        self.precision.setCurrentText(settings.precision)
        if settings.data_dir:
            self.data_dir.setText(settings.data_dir)
        # after the fields: settings named after a preset but not following its recipe read "custom (from quick)"
        self._show_preset(preset_name(settings, settings.preset))
        self._filling = False

    def settings(self) -> TrainSettings:
        """The settings shown; "custom" as the preset name once any field differs from the preset's."""
        on_arch = with_arch(self._base, self.arch.currentText())  # a new architecture drops the preset's arch_args
        arch_args = on_arch.arch_args
        if "width" in ARCHITECTURE_DEFAULTS[on_arch.arch]:
            arch_args["width"] = self.width_spin.value()
        shown = replace(on_arch, epochs=self.epochs.value(),
                        batch_size=self.batch_size.value(), lr=self.lr.value(),
                        optimizer=self.optimizer.currentText(), schedule=self.schedule.currentText(),
                        weight_decay=self.weight_decay.value(), label_smoothing=self.label_smoothing.value(),
                        augment=self.augment.isChecked(), augment_strength=self.augment_strength.value(),
                        synthetic_digits=self.pen_digits.value(), my_samples_share=self._my_samples_share(),
                        val_fraction=self.val_share.value() / 100, seed=self.seed.value(),
                        device=self.device.currentText(), precision=self.precision.currentText(),
                        data_dir=self.data_folder() or None)
        # compared with the preset last applied, whatever the combo shows now; the data and device do not count
        return replace(shown, preset=preset_name(shown, self._base.preset))

    def _show_preset(self, name: str) -> None:
        """Select `name` in the preset box and describe it; "custom" says which preset it came from ("custom (from
        quick)", in the box too) and what changed."""
        base = self._base.preset if self._base is not None else CUSTOM
        custom = self.preset.count() - 1  # the last item; its text names the preset the edits started from
        self.preset.setItemText(custom, f"{CUSTOM} (from {base})" if name == CUSTOM and base in PRESETS else CUSTOM)
        self.preset.setCurrentIndex(custom if name == CUSTOM else self.preset.findText(name))
        if name != CUSTOM or base not in PRESETS:
            self.preset_description.setText(PRESET_DESCRIPTIONS[name])
            return
        shown, recipe = self.settings(), PRESETS[base]
        changed = [f"{words} {_as_shown(field, getattr(recipe, field))} → {_as_shown(field, getattr(shown, field))}"
                   for field, words in SHOWN_FIELDS.items() if getattr(shown, field) != getattr(recipe, field)]
        before, after = (full_arch_args(x.arch, x.arch_args).get("width") for x in (recipe, shown))
        if shown.arch == recipe.arch and before != after:
            changed.append(f"width {before} → {after}")
        self.preset_description.setText(f"{CUSTOM} (from {base}): the {base} preset with "
                                        f"{', '.join(changed) or 'changed settings'}.")

    def custom_origin(self) -> str | None:
        """The preset the shown custom settings came from ("custom (from quick)"), or None."""
        is_custom = self.preset.currentIndex() == self.preset.count() - 1
        if not is_custom or self._base is None or self._base.preset not in PRESETS:
            return None
        return self._base.preset

    @staticmethod
    def _label_tooltips(form: QFormLayout) -> None:
        """A row's label explains what its field does too: hovering either shows the same words."""
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is None or field is None or label.widget() is None:
                continue
            widget = field.widget() or field.layout().itemAt(0).widget()  # a row layout: its first widget
            label.widget().setToolTip(widget.toolTip())

    def _my_samples_share(self) -> float:
        if self.training_data.currentText() != WITH_MY_SAMPLES:
            return 0.0
        return self._base.my_samples_share or MY_SAMPLES_SHARE  # a share the settings brought along is kept

    def data_folder(self) -> str:
        return self.data_dir.text().strip()

    def set_data_folder(self, folder: str) -> None:
        self.data_dir.setText(folder)

    def _show_width(self, arch: str, args: dict) -> None:
        defaults = ARCHITECTURE_DEFAULTS[arch]
        self.width_spin.setEnabled("width" in defaults)
        if "width" in defaults:
            self.width_spin.setValue(int(args.get("width", defaults["width"])))

    # ------------------------------------------------------------ slots
    @Slot(str)
    def on_preset_current_text_changed(self, name: str) -> None:
        if self._filling or name not in PRESETS:
            return
        self.set_settings(replace(PRESETS[name], data_dir=self.data_folder() or None,
                                  device=self.device.currentText() or PRESETS[name].device,
                                  my_samples_share=self._my_samples_share()))

    @Slot(str)
    def on_arch_current_text_changed(self, arch: str) -> None:
        if self._filling or not arch:
            return
        self._show_width(arch, with_arch(self._base, arch).arch_args)  # another one starts from its own defaults
        self.on_field_edited()

    @Slot()
    def on_field_edited(self) -> None:
        if self._filling or self._base is None:
            return
        self._filling = True
        self._show_preset(self.settings().preset)  # "custom" as soon as a field leaves the preset
        self._filling = False

    @Slot(bool)
    def on_advanced_button_toggled(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    @Slot()
    def on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "MNIST folder", self.data_folder())
        if folder:
            self.set_data_folder(folder)
