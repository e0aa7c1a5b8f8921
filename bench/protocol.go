// Package bench runs the benchmark protocols of the UniMoS paper
// (Office-Home, VisDA-2017, DomainNet and DomainNet-126) on a feature store:
// every (method, task, seed) run is kept in a bench directory, so a bench
// resumes where it stopped, and the finished runs are reported as tables in
// the paper's layout, CSV, JSON and plots, beside the published numbers.
package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/unimos/unimos/features"
)

// Protocol is one benchmark of the paper: the domains a store must have,
// the adaptation tasks between them and the UniMoS preset they use.
type Protocol struct {
	Name    string   // command-line name, e.g. "office-home"
	Title   string   // name in reports, e.g. "Office-Home"
	Preset  string   // unimos.Preset name
	Domains []string // domain names expected in the store
	Short   []string // short domain names for task names, parallel to Domains
	Tasks   []Task   // every task, in the paper's column order
	// MeanClass makes the mean of per-class accuracies the headline number
	// (VisDA-2017's metric) instead of overall accuracy.
	MeanClass bool
	Published Published // the paper's numbers for this protocol
}

// Task is adaptation from a labelled source domain to a target domain.
type Task struct {
	Source, Target string // domain names in the store
}

// Protocols returns the four protocols of the paper, fresh copies on every call.
func Protocols() []Protocol {
	return []Protocol{
		withAllPairs(Protocol{
			Name: "office-home", Title: "Office-Home", Preset: "office-home",
			Domains:   []string{"Art", "Clipart", "Product", "Real_World"},
			Short:     []string{"A", "C", "P", "R"},
			Published: officeHomePublished,
		}),
		{
			Name: "visda", Title: "VisDA-2017", Preset: "visda",
			Domains: []string{"synthetic", "real"}, Short: []string{"synthetic", "real"},
			Tasks:     []Task{{"synthetic", "real"}},
			MeanClass: true, Published: visdaPublished,
		},
		withAllPairs(Protocol{
			Name: "domainnet", Title: "DomainNet", Preset: "domainnet",
			Domains:   []string{"clipart", "infograph", "painting", "quickdraw", "real", "sketch"},
			Short:     []string{"clp", "inf", "pnt", "qdr", "rel", "skt"},
			Published: domainNetPublished,
		}),
		withAllPairs(Protocol{
			Name: "domainnet126", Title: "DomainNet-126 (Mini-DomainNet of the paper)", Preset: "domainnet126",
			Domains:   []string{"clipart", "painting", "real", "sketch"},
			Short:     []string{"clp", "pnt", "rel", "skt"},
			Published: domainNet126Published,
		}),
	}
}

// withAllPairs sets p's tasks to every ordered pair of distinct domains,
// sources in domain order, then targets: the paper's column order.
func withAllPairs(p Protocol) Protocol {
	for _, s := range p.Domains {
		for _, t := range p.Domains {
			if s != t {
				p.Tasks = append(p.Tasks, Task{s, t})
			}
		}
	}
	return p
}

// ProtocolNames lists the protocols' names.
func ProtocolNames() []string {
	var names []string
	for _, p := range Protocols() {
		names = append(names, p.Name)
	}
	return names
}

// ProtocolByName returns the protocol called name.
func ProtocolByName(name string) (Protocol, error) {
	for _, p := range Protocols() {
		if p.Name == name {
			return p, nil
		}
	}
	return Protocol{}, fmt.Errorf("unknown protocol %q (choose from %s)", name, strings.Join(ProtocolNames(), ", "))
}

// short returns the short name of a domain of p.
func (p Protocol) short(domain string) string {
	if i := slices.Index(p.Domains, domain); i >= 0 {
		return p.Short[i]
	}
	return domain
}

// TaskName is the task's name in tables and on the command line, from the
// short domain names: "A->C".
func (p Protocol) TaskName(t Task) string { return p.short(t.Source) + "->" + p.short(t.Target) }

// taskLabel is the task's name in plots and tables: "A→C".
func (p Protocol) taskLabel(t Task) string { return p.short(t.Source) + "→" + p.short(t.Target) }

// domain resolves a short or full domain name.
func (p Protocol) domain(name string) (string, bool) {
	for i, d := range p.Domains {
		if name == d || name == p.Short[i] {
			return d, true
		}
	}
	return "", false
}

// ParseTasks reads a comma-separated list of tasks such as "A->C,P->R"
// (short or full domain names, "->" or "→"); "" means every task.
func (p Protocol) ParseTasks(list string) ([]Task, error) {
	if strings.TrimSpace(list) == "" {
		return slices.Clone(p.Tasks), nil
	}
	var tasks []Task
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(strings.ReplaceAll(item, "→", "->"))
		src, tgt, ok := strings.Cut(item, "->")
		s, okS := p.domain(strings.TrimSpace(src))
		t, okT := p.domain(strings.TrimSpace(tgt))
		task := Task{s, t}
		if !ok || !okS || !okT || !slices.Contains(p.Tasks, task) {
			var valid []string
			for _, t := range p.Tasks {
				valid = append(valid, p.TaskName(t))
			}
			return nil, fmt.Errorf("protocol %s has no task %q (tasks: %s)", p.Name, item, strings.Join(valid, ", "))
		}
		if !slices.Contains(tasks, task) {
			tasks = append(tasks, task)
		}
	}
	return tasks, nil
}

// CheckStore reports the domains that tasks need and the store lacks.
func (p Protocol) CheckStore(store *features.Store, tasks []Task) error {
	var missing []string
	for _, t := range tasks {
		for _, d := range []string{t.Source, t.Target} {
			if !slices.Contains(store.Meta.Domains, d) && !slices.Contains(missing, d) {
				missing = append(missing, d)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("feature store %s (dataset %q) lacks domain(s) %s that protocol %s needs; it has %s (protocol %s expects %s)",
			store.Dir, store.Meta.Name, strings.Join(missing, ", "), p.Name, strings.Join(store.Meta.Domains, ", "),
			p.Name, strings.Join(p.Domains, ", "))
	}
	return nil
}
