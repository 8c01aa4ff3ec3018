package appliance

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// redacted replaces secrets in "config show".
const redacted = "<redacted>"

// Show writes c as HCL, every setting spelled out, each with a comment that
// says where its value came from ("default", "flag --quorum" or
// "FILE:LINE"). Secrets are redacted. The output decodes to the same
// configuration, secrets aside.
func (c *Config) Show(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Effective regent configuration: defaults, then files, then flags.\n")
	if len(c.Files) == 0 {
		b.WriteString("# Files read: none.\n")
	} else {
		b.WriteString("# Files read, in order: " + strings.Join(c.Files, ", ") + ".\n")
	}
	c.showBlock(&b, "", "")
	b.WriteString("\nmaster {\n")
	c.showBlock(&b, "master.", "  ")
	b.WriteString("\n  tls {\n")
	c.showBlock(&b, "master.tls.", "    ")
	b.WriteString("  }\n}\n\nsupervisor {\n")
	c.showBlock(&b, "supervisor.", "  ")
	for _, n := range c.Supervisor.Notify {
		name := notifySetting(n.Name)
		fmt.Fprintf(&b, "\n  notify %s {  # %s\n", hclString(n.Name), c.Sources[name])
		lines := [][3]string{{"exec", hclStrings(n.Exec), c.Sources[name+".exec"].String()}}
		if src, ok := c.Sources[name+".events"]; ok {
			lines = append(lines, [3]string{"events", hclStrings(n.Events), src.String()})
		} else {
			lines = append(lines, [3]string{"events", hclStrings(n.Events), "default: every event"})
		}
		writeAligned(&b, "    ", lines)
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// showBlock writes the settings directly under prefix ("master." holds
// master.quorum but not master.tls.ca_file).
func (c *Config) showBlock(b *strings.Builder, prefix, indent string) {
	var lines [][3]string
	for i := range settings {
		s := &settings[i]
		rest, ok := strings.CutPrefix(s.name, prefix)
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		v := showValue(s, c)
		if s.name == "master.peer_secret" && c.Master.PeerSecret != "" {
			v = hclString(redacted)
		}
		lines = append(lines, [3]string{rest, v, c.Sources[s.name].String()})
	}
	writeAligned(b, indent, lines)
}

func writeAligned(b *strings.Builder, indent string, lines [][3]string) {
	kw, vw := 0, 0
	for _, l := range lines {
		kw, vw = max(kw, len(l[0])), max(vw, len(l[1]))
	}
	for _, l := range lines {
		fmt.Fprintf(b, "%s%-*s = %-*s  # %s\n", indent, kw, l[0], vw, l[1], l[2])
	}
}

// showValue is the setting's value in c as an HCL literal.
func showValue(s *setting, c *Config) string {
	switch v := s.field(c).(type) {
	case *string:
		return hclString(*v)
	case *bool:
		return strconv.FormatBool(*v)
	case *int:
		return strconv.Itoa(*v)
	case *time.Duration:
		return hclString(formatDuration(*v))
	case *[]string:
		return hclStrings(*v)
	}
	panic(fmt.Sprintf("appliance: setting %s has no printer", s.name))
}

func hclString(s string) string {
	return strings.TrimSpace(string(hclwrite.TokensForValue(cty.StringVal(s)).Bytes()))
}

func hclStrings(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = hclString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatDuration writes d the short way: "5m", not "5m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ChangedSettings returns the names of the settings whose values differ
// between old and new, in table order, then "supervisor.notify" when the
// hooks differ. The supervisor uses it on reload to decide whether the master
// must be restarted.
func ChangedSettings(old, new *Config) []string {
	var changed []string
	for i := range settings {
		if showValue(&settings[i], old) != showValue(&settings[i], new) {
			changed = append(changed, settings[i].name)
		}
	}
	if !slices.EqualFunc(old.Supervisor.Notify, new.Supervisor.Notify, func(a, b NotifyConfig) bool {
		return a.Name == b.Name && slices.Equal(a.Exec, b.Exec) && slices.Equal(a.Events, b.Events)
	}) {
		changed = append(changed, "supervisor.notify")
	}
	return changed
}
