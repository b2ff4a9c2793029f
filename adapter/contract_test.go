package adapter_test

import (
	"context"
	"testing"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/registrytest"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// personOf converts a suite person to the mock's population form. Sex must
// be set: a zero byte is not valid text for PostgreSQL's COPY.
func personOf(r adapter.Record) population.Person {
	p := population.Person{ID: r.PersonID, BirthDate: booking.DateOf(r.BirthDate), Sex: 'F',
		Contraindicated: r.Contraindicated, Excluded: r.Excluded}
	for _, d := range r.Doses {
		p.Doses = append(p.Doses, population.Dose{Number: d.Number, Product: d.Product, Date: booking.DateOf(d.Date)})
	}
	return p
}

func mockWithSeeder() (*registry.Registry, registrytest.Seeder) {
	reg := registry.NewEmpty()
	return reg, registrytest.SeederFunc(func(_ context.Context, people []adapter.Record) error {
		for _, r := range people {
			reg.Add(personOf(r))
		}
		return nil
	})
}

func TestContractMockRegistry(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
		return mockWithSeeder()
	})
}

func TestContractFacadeOverMock(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
		reg, seed := mockWithSeeder()
		return newFacade(t, reg, adapter.FacadeConfig{}), seed
	})
}
