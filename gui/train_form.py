"""The training settings form: one widget per field of core.training.TrainSettings; a preset fills them all."""
from __future__ import annotations

from dataclasses import replace
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLineEdit, QPushButton, QSpinBox, QWidget)

from core.paths import mnist_dir
from core.settings import (ARCHITECTURE_DEFAULTS, ARCHITECTURE_DESCRIPTIONS, CUSTOM, DEVICES, OPTIMIZERS,
                           PRECISIONS, PRESETS, TrainSettings, preset_name, with_arch)

MNIST_ONLY, WITH_MY_SAMPLES = "MNIST", "MNIST + my samples"
# Your samples are repeated until they make up this share of the training split: enough to learn your handwriting
# from ~10 samples a digit, little enough that MNIST still dominates (about 3,000 of 63,000 images).
MY_SAMPLES_SHARE = 0.05


class TrainForm(QWidget):
    """Filled from core.settings (no torch needed), so it is ready as soon as the window shows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._base: TrainSettings | None = None  # the last preset applied: supplies the fields not shown here
        self._filling = False
        self.preset = QComboBox()
        self.preset.setToolTip("Starting settings: tutorial = the tutorial's exact recipe; quick = 99.2% "
                               "in about ten seconds; best = the shipped default weights' recipe (slow on a CPU)")
        self.arch = QComboBox()
        self.width_spin = QSpinBox()
        self.width_spin.setRange(2, 256)
        self.width_spin.setToolTip("Channels in the first layer (they double twice); smaller is faster")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 8192)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 10.0)
        self.lr.setSingleStep(0.0005)
        self.lr.setToolTip("Peak learning rate (OneCycle schedule) or the constant rate")
        self.optimizer = QComboBox()
        self.augment = QCheckBox("Random shifts, rotations, scale and stroke thickness")
        self.pen_digits = QSpinBox()
        self.pen_digits.setRange(0, 1_000_000)
        self.pen_digits.setSingleStep(1000)
        self.pen_digits.setToolTip("Synthetic pen-drawn digits added to the training images: they teach the "
                                   "network how mouse-drawn digits look")
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
                                  "val_fraction; the command line's --val-share takes it as a share, 0.1 = 10 %)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Same seed and settings: the same run, number for number")
        self.device = QComboBox()
        self.precision = QComboBox()
        self.precision.setToolTip("fp32: full precision; bf16: bfloat16 arithmetic in the forward pass (weights "
                                  "stay fp32); auto: bf16 where the CPU or GPU computes it natively, else fp32")
        self.data_dir = QLineEdit()
        self.data_dir.setObjectName("dataFolder")
        self.data_dir.setClearButtonEnabled(True)
        browse = QPushButton("Browse…")
        data_row = QHBoxLayout()
        data_row.setContentsMargins(0, 0, 0, 0)
        data_row.addWidget(self.data_dir, 1)
        data_row.addWidget(browse)

        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow("Architecture", self.arch)
        form.addRow("Width", self.width_spin)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Optimizer", self.optimizer)
        form.addRow("Augmentation", self.augment)
        form.addRow("Pen-drawn digits", self.pen_digits)
        form.addRow("Training data", self.training_data)
        form.addRow("Validation share", self.val_share)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("MNIST folder", data_row)
        self.setEnabled(False)

        browse.clicked.connect(self.on_browse_clicked)
        self.preset.currentTextChanged.connect(self.on_preset_current_text_changed)
        self.arch.currentTextChanged.connect(self.on_arch_current_text_changed)
        for spin in (self.width_spin, self.epochs, self.batch_size, self.lr, self.pen_digits, self.val_share,
                     self.seed):
            spin.valueChanged.connect(self.on_field_edited)
        for combo in (self.optimizer, self.device, self.precision, self.training_data):
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
        self.preset.setCurrentText(settings.preset if self.preset.findText(settings.preset) >= 0 else CUSTOM)
        self.arch.setCurrentText(settings.arch)
        self._show_width(settings.arch, settings.arch_args)
        self.epochs.setValue(settings.epochs)
        self.batch_size.setValue(settings.batch_size)
        self.lr.setValue(settings.lr)
        self.optimizer.setCurrentText(settings.optimizer)
        self.augment.setChecked(settings.augment)
        self.pen_digits.setValue(settings.synthetic_digits)
        self.training_data.setCurrentText(WITH_MY_SAMPLES if settings.my_samples_share > 0 else MNIST_ONLY)
        self.val_share.setValue(round(100 * settings.val_fraction))
        self.seed.setValue(settings.seed)
        self.device.setCurrentText(settings.device)
        self.precision.setCurrentText(settings.precision)
        if settings.data_dir:
            self.data_dir.setText(settings.data_dir)
        self._filling = False

    def settings(self) -> TrainSettings:
        """The settings shown; "custom" as the preset name once any field differs from the preset's."""
        on_arch = with_arch(self._base, self.arch.currentText())  # a new architecture drops the preset's arch_args
        arch_args = on_arch.arch_args
        if "width" in ARCHITECTURE_DEFAULTS[on_arch.arch]:
            arch_args["width"] = self.width_spin.value()
        shown = replace(on_arch, epochs=self.epochs.value(),
                        batch_size=self.batch_size.value(), lr=self.lr.value(),
                        optimizer=self.optimizer.currentText(), augment=self.augment.isChecked(),
                        synthetic_digits=self.pen_digits.value(), my_samples_share=self._my_samples_share(),
                        val_fraction=self.val_share.value() / 100, seed=self.seed.value(),
                        device=self.device.currentText(), precision=self.precision.currentText(),
                        data_dir=self.data_folder() or None)
        # compared with the preset last applied, whatever the combo shows now; the data and device do not count
        return replace(shown, preset=preset_name(shown, self._base.preset))

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
        self.preset.setCurrentText(self.settings().preset)  # shows "custom" as soon as a field leaves the preset
        self._filling = False

    @Slot()
    def on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "MNIST folder", self.data_folder())
        if folder:
            self.set_data_folder(folder)
