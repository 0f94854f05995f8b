"""Under the bars: "Wrong? It was:" buttons 0-9 with each digit's sample count, "Right", and one line of feedback."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def how_many(digit: int, n: int) -> str:
    """"1 four", "12 fours", "3 sixes": how the confirmation counts a digit's samples."""
    name = DIGIT_NAMES[digit]
    return f"{n} {name}" if n == 1 else f"{n} {name}es" if name.endswith("x") else f"{n} {name}s"


class CorrectionRow(QWidget):
    """Buttons only; the Draw tab does the saving (and handles the keys 0-9 and Enter on the pad)."""

    digit_clicked = Signal(int)  # "it was this digit"
    right_clicked = Signal()     # "the prediction is right"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("correctionRow")
        title = QLabel("Wrong? It was:")
        title.setToolTip("Save what is on the pad as a sample of the digit it really is; your samples teach the "
                         "network your handwriting (My digits tab)")
        side = self.fontMetrics().horizontalAdvance("0") * 4
        self.digit_buttons: list[QPushButton] = []
        self.count_labels: list[QLabel] = []
        small = QFont(self.font())
        small.setPointSizeF(small.pointSizeF() * 0.85)
        grid = QGridLayout()
        grid.setHorizontalSpacing(2)
        grid.setVerticalSpacing(0)
        for digit in range(10):
            button = QPushButton(str(digit))
            button.setObjectName(f"correct_{digit}")
            button.setMinimumWidth(side)
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            button.setToolTip(f"It was a {digit}: save the drawing as a sample of {digit} (key {digit} on the pad)")
            button.clicked.connect(lambda _=False, d=digit: self.digit_clicked.emit(d))
            count = QLabel()
            count.setFont(small)
            count.setAlignment(Qt.AlignmentFlag.AlignCenter)
            count.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            grid.addWidget(button, 0, digit)
            grid.addWidget(count, 1, digit)
            self.digit_buttons.append(button)
            self.count_labels.append(count)
        self.right_button = QPushButton("Right")
        self.right_button.setObjectName("correct_right")
        self.right_button.setToolTip("The prediction is right: save the drawing as a sample of it (Enter on the pad)."
                                     " Right answers teach as much as wrong ones")
        grid.addWidget(self.right_button, 0, 10)
        grid.setColumnStretch(11, 1)
        self.status = QLabel()
        self.status.setObjectName("sampleStatus")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        self.right_button.clicked.connect(self.on_right_button_clicked)
        self.set_ready(False, None)

    def set_counts(self, counts: list[int]) -> None:
        """Show how many samples of each digit are saved."""
        for digit, (label, n) in enumerate(zip(self.count_labels, counts)):
            label.setText(str(n))
            label.setToolTip(f"{how_many(digit, n)} saved")

    def count_text(self, digit: int) -> str:
        return self.count_labels[digit].text()

    def set_ready(self, has_input: bool, right_text: str | None) -> None:
        """Enable the buttons when there is something to save; `right_text`: what Right does ("Right: 4",
        "Save as 4"), None when it has nothing to save it as (no prediction)."""
        for button in self.digit_buttons:
            button.setEnabled(has_input)
        self.right_button.setEnabled(has_input and right_text is not None)
        self.right_button.setText(right_text or "Right")

    def show_status(self, text: str, warning: bool = False) -> None:
        self.status.setForegroundRole(QPalette.ColorRole.Highlight if warning else QPalette.ColorRole.WindowText)
        font = QFont(self.font())
        font.setBold(warning)
        self.status.setFont(font)
        self.status.setText(text)

    def status_text(self) -> str:
        return self.status.text()

    @Slot()
    def on_right_button_clicked(self) -> None:
        self.right_clicked.emit()
