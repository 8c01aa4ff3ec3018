// Command regent is the highly available master and its supervisor in one
// binary. Everything it does lives in package appliance; main only wires the
// process's arguments, standard streams and signals to [appliance.Main] and
// exits with the code it returns.
package main
