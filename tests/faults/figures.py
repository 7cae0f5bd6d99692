"""What each drill measured, gathered for one table."""

from __future__ import annotations


class Figures:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, drill: str, **figures) -> None:
        self.rows.append({"drill": drill, **figures})

    def __bool__(self) -> bool:
        return bool(self.rows)

    def table(self) -> list[str]:
        lines = ["| drill | figures |", "|---|---|"]
        for row in self.rows:
            figures = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in row.items()
                                if k != "drill")
            lines.append(f"| {row['drill']} | {figures} |")
        return lines


FIGURES = Figures()
