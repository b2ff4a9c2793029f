package population_test

import (
	"fmt"

	"github.com/yeyak/yeyak/mocks/population"
)

// Any person of a population is generated alone, in O(1), and always the
// same for the same Config.
func ExamplePersonAt() {
	cfg := population.Config{Seed: 1, People: 16_000_000}
	p := population.PersonAt(cfg, 0)
	fmt.Println(p.ID, p.BirthDate, p.Digit(), string(p.Sex), p.Region)
	// Output: P0000000000 1997-08-12 2 F 46-150
}
