package master

import (
	"fmt"
	"math"
	"net"
	"strings"
)

// Validation follows Mesos's rules and error texts (src/master/maintenance.cpp,
// weights_handler.cpp, quota.cpp, common/roles.cpp). Each function is pure;
// the same checks run before an operation is proposed and again when it is
// applied, so a request that raced with another is refused deterministically.

// validateMachine checks one machine ID.
func validateMachine(id MachineID) error {
	if id.Hostname == "" && id.IP == "" {
		return opErrorf("Both 'hostname' and 'ip' for a machine are empty")
	}
	if id.IP != "" {
		ip := net.ParseIP(id.IP)
		if ip == nil || ip.To4() == nil || strings.Contains(id.IP, ":") {
			return opErrorf("Failed to parse IPv4 address '%s'", id.IP)
		}
	}
	return nil
}

// validateMachines checks a list of machine IDs (machine/down, machine/up).
func validateMachines(ids []MachineID) error {
	if len(ids) == 0 {
		return opErrorf("List of machines is empty")
	}
	seen := make(map[MachineID]bool, len(ids))
	for _, id := range ids {
		if err := validateMachine(id); err != nil {
			return err
		}
		if seen[id] {
			return opErrorf("Machine '%s' appears more than once in the schedule", id)
		}
		seen[id] = true
	}
	return nil
}

// validateUnavailability checks an interval.
func validateUnavailability(u Unavailability) error {
	if u.Duration != nil && u.Duration.Nanoseconds < 0 {
		return opErrorf("Unavailability 'duration' is negative")
	}
	return nil
}

// validateSchedule checks a schedule against the machines in maintenance.
func validateSchedule(s *Schedule, modes map[MachineID]MachineMode) error {
	updated := map[MachineID]bool{}
	for _, w := range s.Windows {
		if len(w.MachineIDs) == 0 {
			return opErrorf("List of machines in the maintenance window is empty")
		}
		if err := validateUnavailability(w.Unavailability); err != nil {
			return err
		}
		for _, id := range w.MachineIDs {
			if err := validateMachine(id); err != nil {
				return err
			}
			if updated[id] {
				return opErrorf("Machine '%s' appears more than once in the schedule", id)
			}
			updated[id] = true
		}
	}
	// Report the first DOWN machine left out in a stable order.
	for _, id := range sortedMachineIDs(modes) {
		if modes[id] == ModeDown && !updated[id] {
			return opErrorf("Machine '%s' is deactivated and cannot be removed from the schedule", id)
		}
	}
	return nil
}

func sortedMachineIDs(m map[MachineID]MachineMode) []MachineID {
	ids := make([]MachineID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && lessMachine(ids[j], ids[j-1]); j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

func lessMachine(a, b MachineID) bool {
	if a.Hostname != b.Hostname {
		return a.Hostname < b.Hostname
	}
	return a.IP < b.IP
}

// validateStartMaintenance checks machine/down: each machine is scheduled
// and DRAINING.
func (r *Registry) validateStartMaintenance(ids []MachineID) error {
	return r.validateModes(ids, ModeDraining, "down")
}

// validateStopMaintenance checks machine/up: each machine is DOWN.
func (r *Registry) validateStopMaintenance(ids []MachineID) error {
	return r.validateModes(ids, ModeDown, "up")
}

// validateModes checks that every machine of ids is valid, scheduled, and in
// mode want, with Mesos's error texts for bringing it dir ("down", "up").
func (r *Registry) validateModes(ids []MachineID, want MachineMode, dir string) error {
	if err := validateMachines(ids); err != nil {
		return err
	}
	modes := r.machineModes()
	for _, id := range ids {
		mode, ok := modes[id]
		if !ok {
			return opErrorf("Machine '%s' is not part of a maintenance schedule", id)
		}
		if mode != want {
			return opErrorf("Machine '%s' is not in %s mode and cannot be brought %s", id, want, dir)
		}
	}
	return nil
}

// validateRole checks a role name (Mesos's roles::validate).
func validateRole(role string) error {
	if role == "*" {
		return nil
	}
	if role == "" {
		return opErrorf("Empty role name is invalid")
	}
	if strings.HasPrefix(role, "/") {
		return opErrorf("Role '%s' cannot start with a slash", role)
	}
	if strings.HasSuffix(role, "/") {
		return opErrorf("Role '%s' cannot end with a slash", role)
	}
	for _, c := range strings.Split(role, "/") {
		switch {
		case c == "":
			return opErrorf("Role '%s' cannot contain two adjacent slashes", role)
		case c == ".":
			return opErrorf("Role '%s' cannot include '.' as a component", role)
		case c == "..":
			return opErrorf("Role '%s' cannot include '..' as a component", role)
		case c == "*":
			return opErrorf("Role '%s' cannot include '*' as a component", role)
		case c[0] == '-':
			return opErrorf("Role component '%s' is invalid because it starts with a dash", c)
		case strings.ContainsAny(c, "\x08\x0b\x0c\n\r\t "):
			return opErrorf("Role component '%s' is invalid because it contains backspace or whitespace", c)
		}
	}
	return nil
}

// validateWeights checks a weights update (PUT /weights, UPDATE_WEIGHTS).
func validateWeights(ws []WeightInfo) error {
	for _, w := range ws {
		if err := validateRole(w.Role); err != nil {
			return opErrorf("Failed to validate update weights request JSON: Invalid role '%s': %v", w.Role, err)
		}
		if !(w.Weight > 0) || math.IsInf(w.Weight, 0) {
			return opErrorf("Failed to validate update weights request JSON for role '%s': Invalid weight '%v': Weights must be positive", w.Role, w.Weight)
		}
	}
	return nil
}

// validateScalar checks one input quantity.
func validateScalar(v float64) error {
	switch {
	case math.IsNaN(v):
		return fmt.Errorf("NaN not supported")
	case math.IsInf(v, 0):
		return fmt.Errorf("Infinite values not supported")
	case v < 0:
		return fmt.Errorf("Negative values not supported")
	}
	return nil
}

// validateQuotaConfigs checks an UPDATE_QUOTA request (all or nothing).
func validateQuotaConfigs(cs []QuotaConfig) error {
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Role == "" {
			return opErrorf("Invalid QuotaConfig: 'QuotaConfig.role' must be set")
		}
		if err := validateRole(c.Role); err != nil {
			return opErrorf("Invalid QuotaConfig: Invalid 'QuotaConfig.role': %v", err)
		}
		if c.Role == "*" {
			return opErrorf("Invalid QuotaConfig: Invalid 'QuotaConfig.role': setting quota for the default '*' role is not supported")
		}
		if seen[c.Role] {
			return opErrorf("Invalid QuotaConfig: duplicate config for role '%s'", c.Role)
		}
		seen[c.Role] = true
		for _, k := range sortedKeys(c.Guarantees) {
			if err := validateScalar(c.Guarantees[k].Value); err != nil {
				return opErrorf("Invalid QuotaConfig: Invalid guarantee configuration {'%s': %v}: %v", k, c.Guarantees[k].Value, err)
			}
		}
		for _, k := range sortedKeys(c.Limits) {
			if err := validateScalar(c.Limits[k].Value); err != nil {
				return opErrorf("Invalid QuotaConfig: Invalid limit configuration {'%s': %v}: %v", k, c.Limits[k].Value, err)
			}
		}
		// Guarantees must fit within limits; a resource with no limit is
		// unlimited.
		for _, k := range sortedKeys(c.Guarantees) {
			if l, ok := c.Limits[k]; ok && c.Guarantees[k].Value > l.Value {
				return opErrorf("Invalid QuotaConfig: 'QuotaConfig.guarantees' {'%s': %v} is not contained within the 'QuotaConfig.limits' {'%s': %v}", k, c.Guarantees[k].Value, k, l.Value)
			}
		}
	}
	return nil
}
