"""Turn a terminal screen captured with `tmux capture-pane -e -p` into an SVG.

The capture holds the text and its SGR escape sequences (colours, bold, reverse), exactly what
the terminal was showing. Each cell becomes a fixed-width slot; background colours are drawn
as rectangles under the text. The 16 ANSI colours use xterm's palette, so the picture matches
what a terminal shows by default; 256-colour and truecolor codes are honoured too.

Usage: python3 ansi2svg.py CAPTURE.ansi OUT.svg [COLUMNS] [ROWS]
Standard library only.
"""

import html
import re
import sys

# xterm's default palette for the 16 ANSI colours.
PALETTE = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]
FG, BG = "#d0d0d0", "#1c1c1c"  # the default foreground and background of the picture
CELL_W, CELL_H, FONT = 8.4, 17, 14

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
OTHER_ESC = re.compile(r"\x1b(\[[0-9;?]*[A-Za-ln-z]|\][^\x07]*\x07|[()][A-Za-z0-9])")


def color256(n):
    if n < 16:
        return PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return "#%02x%02x%02x" % (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return "#%02x%02x%02x" % (v, v, v)


class Style:
    def __init__(self):
        self.fg = None
        self.bg = None
        self.bold = False
        self.reverse = False
        self.dim = False

    def copy(self):
        s = Style()
        s.fg, s.bg, s.bold, s.reverse, s.dim = self.fg, self.bg, self.bold, self.reverse, self.dim
        return s

    def apply(self, params):
        codes = [int(p) if p else 0 for p in re.split("[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.__init__()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 7:
                self.reverse = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 27:
                self.reverse = False
            elif 30 <= c <= 37:
                self.fg = PALETTE[c - 30]
            elif 90 <= c <= 97:
                self.fg = PALETTE[c - 90 + 8]
            elif 40 <= c <= 47:
                self.bg = PALETTE[c - 40]
            elif 100 <= c <= 107:
                self.bg = PALETTE[c - 100 + 8]
            elif c == 39:
                self.fg = None
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    col = color256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    col = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5])
                    i += 4
                else:
                    col = None
                if c == 38:
                    self.fg = col
                else:
                    self.bg = col
            i += 1

    def colors(self):
        fg, bg = self.fg or FG, self.bg
        if self.reverse:
            fg, bg = (self.bg or BG), (self.fg or FG)
        if self.bold and self.fg in PALETTE[:8]:
            fg = PALETTE[PALETTE.index(self.fg) + 8] if not self.reverse else fg
        return fg, bg


def parse(text, cols, rows):
    """Cells as (char, fg, bg, bold) per row."""
    grid = []
    style = Style()  # tmux writes only changes: a style carries over to the next line
    for line in text.split("\n")[:rows]:
        line = OTHER_ESC.sub("", line)
        cells = []
        pos = 0
        for m in SGR.finditer(line):
            for ch in line[pos:m.start()]:
                cells.append((ch,) + style.colors() + (style.bold,))
            style.apply(m.group(1))
            pos = m.end()
        for ch in line[pos:]:
            cells.append((ch,) + style.colors() + (style.bold,))
        cells = cells[:cols]
        while len(cells) < cols:
            cells.append((" ", FG, None, False))
        grid.append(cells)
    while len(grid) < rows:
        grid.append([(" ", FG, None, False)] * cols)
    return grid


def svg(grid, cols, rows):
    w, h = cols * CELL_W + 16, rows * CELL_H + 16
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}">',
        f'<rect width="100%" height="100%" rx="6" fill="{BG}"/>',
        f'<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT}" '
        'xml:space="preserve">',
    ]
    for y, row in enumerate(grid):
        top = 8 + y * CELL_H
        x = 0
        while x < cols:  # background runs
            bg = row[x][2]
            end = x
            while end < cols and row[end][2] == bg:
                end += 1
            if bg:
                out.append(f'<rect x="{8 + x * CELL_W:.1f}" y="{top}" width="{(end - x) * CELL_W:.1f}" '
                           f'height="{CELL_H}" fill="{bg}"/>')
            x = end
        x = 0
        while x < cols:  # text runs of one colour and weight
            fg, bold = row[x][1], row[x][3]
            end = x
            while end < cols and row[end][1] == fg and row[end][3] == bold:
                end += 1
            chunk = "".join(c[0] for c in row[x:end])
            if chunk.strip():
                weight = ' font-weight="bold"' if bold else ""
                # One <tspan> per cell keeps box-drawing characters on the grid in any font.
                xs = " ".join(f"{8 + (x + i) * CELL_W:.1f}" for i in range(end - x))
                out.append(f'<text x="{xs}" y="{top + 13}" fill="{fg}"{weight}>'
                           f'{html.escape(chunk)}</text>')
            x = end
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def main():
    src, dst = sys.argv[1], sys.argv[2]
    text = open(src, encoding="utf-8", errors="replace").read().rstrip("\n")
    cols = int(sys.argv[3]) if len(sys.argv) > 3 else max(len(OTHER_ESC.sub("", SGR.sub("", l))) for l in text.split("\n"))
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else len(text.split("\n"))
    with open(dst, "w", encoding="utf-8") as f:
        f.write(svg(parse(text, cols, rows), cols, rows))


if __name__ == "__main__":
    main()
