package main

import (
	"fmt"
	"strings"
	"time"
)

// section is one figure of BENCHMARKS.md: a table of rows (the figure,
// its baseline measured in the same sitting, their ratio) and the commands
// that reproduce it alone.
type section struct {
	Title string
	// About says what is measured and how to read the ratio.
	About    string
	Rows     []row
	Commands []string
	// Err is set when the figure could not be measured; the section then
	// says why instead of showing numbers.
	Err  error
	Took time.Duration
}

type row struct {
	Figure, Value, Baseline, BaselineValue, Ratio string
}

// machine describes where the figures were measured.
type machine struct {
	CPU, Memory, Go, Postgres, Kernel string
	Cores                             int
	LoadStart, LoadEnd                string
}

// markdown renders the report.
func markdown(at time.Time, took time.Duration, m machine, secs []section) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# yeyak benchmarks\n\n")
	fmt.Fprintf(&b, "Measured by `make bench` (cmd/yeyak-bench) on %s, in %s. Each figure is measured in the same sitting as its baseline, on this machine; the ratio is what carries over to another one.\n\n",
		at.UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	fmt.Fprintf(&b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s, %d cores |\n| memory | %s |\n| Go | %s |\n| PostgreSQL | %s |\n| kernel | %s |\n",
		m.CPU, m.Cores, m.Memory, m.Go, m.Postgres, m.Kernel)
	fmt.Fprintf(&b, "| load average (1 min) at start / end | %s / %s |\n\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(&b, "A load average above the core count means other work shared the machine during the run; it slows a figure and its baseline alike only when they run at the same moment, so read the ratios, and rerun a figure alone with its command.\n")
	for i, s := range secs {
		fmt.Fprintf(&b, "\n## %d. %s\n\n", i+1, s.Title)
		if s.About != "" {
			fmt.Fprintf(&b, "%s\n\n", s.About)
		}
		if s.Err != nil {
			fmt.Fprintf(&b, "**Not measured:** %s\n\n", oneLine(s.Err.Error()))
		} else {
			fmt.Fprintf(&b, "| figure | value | baseline | value | ratio |\n|---|---:|---|---:|---:|\n")
			for _, r := range s.Rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Figure, r.Value, r.Baseline, r.BaselineValue, r.Ratio)
			}
			b.WriteString("\n")
		}
		if len(s.Commands) > 0 {
			b.WriteString("Reproduce alone:\n\n```sh\n")
			for _, c := range s.Commands {
				b.WriteString(c + "\n")
			}
			b.WriteString("```\n")
		}
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// ratio formats a/b as "1.23×".
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.3f×", r)
}

// num formats a figure with a unit, with a precision that suits its size.
func num(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}
