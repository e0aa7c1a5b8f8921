// Package bench runs the benchmark protocols of the UniMoS paper
// (Office-Home, VisDA-2017, DomainNet and DomainNet-126), and the pairs
// protocol of any store, on a feature store: every (method, task, seed) run
// is kept in a bench directory, so a bench resumes where it stopped, and
// the finished runs are reported as tables in the paper's layout, CSV, JSON
// and plots, beside the published numbers where the paper has them.
package bench

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unimos/unimos/features"
	"github.com/unimos/unimos/internal/words"
)

// Protocol is one benchmark: the domains a store must have, the adaptation
// tasks between them and the UniMoS preset they use.
type Protocol struct {
	Name    string   // command-line name, e.g. "office-home"
	Title   string   // name in reports, e.g. "Office-Home"
	Preset  string   // unimos.Preset name; Options.Preset overrides it
	Domains []string // domain names expected in the store
	Short   []string // short domain names for task names, parallel to Domains
	Tasks   []Task   // every task, in the paper's column order
	// MeanClass makes the mean of per-class accuracies the headline number
	// (VisDA-2017's metric) instead of overall accuracy.
	MeanClass bool
	Published Published // the paper's numbers for this protocol

	// unlabelled notes, for the pairs protocol, the store's domains that
	// are not fully labelled and so in no task: "3 of 295 rows unlabelled".
	unlabelled map[string]string
}

// Task is adaptation from a labelled source domain to a target domain.
type Task struct {
	Source, Target string // domain names in the store
}

// Pairs is the name of the protocol of any store: every ordered pair of its
// labelled domains (see PairsProtocol).
const Pairs = "pairs"

// Protocols returns the four protocols of the paper, fresh copies on every
// call. The pairs protocol depends on a store: PairsProtocol.
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

// ProtocolNames lists the protocols' names: the paper's, then Pairs.
func ProtocolNames() []string {
	var names []string
	for _, p := range Protocols() {
		names = append(names, p.Name)
	}
	return append(names, Pairs)
}

// ProtocolByName returns the paper's protocol called name.
func ProtocolByName(name string) (Protocol, error) {
	for _, p := range Protocols() {
		if p.Name == name {
			return p, nil
		}
	}
	return Protocol{}, fmt.Errorf("unknown protocol %q (choose from %s)", name, strings.Join(ProtocolNames(), ", "))
}

// ProtocolFor returns the protocol called name for store: one of the
// paper's, or the pairs protocol of the store's labelled domains.
func ProtocolFor(name string, store *features.Store) (Protocol, error) {
	if name == Pairs {
		return PairsProtocol(store)
	}
	return ProtocolByName(name)
}

// PairsPreset is the pairs protocol's UniMoS preset: Office-Home's
// settings suit small object datasets such as Office-31 and Office-Caltech.
const PairsPreset = "office-home"

// PairsProtocol is the protocol of any store: every ordered pair (source,
// target) of its labelled domains, in the store's domain order. A domain is
// labelled when every row has a label: UniMoS trains on a fully labelled
// source, and a bench scores the target with its labels. It reads the
// labels of every domain of the store.
func PairsProtocol(store *features.Store) (Protocol, error) {
	unlabelled := map[string]string{}
	for _, d := range store.Meta.Domains {
		s, err := store.Summary(d)
		if err != nil {
			return Protocol{}, err
		}
		if s.Unlabelled > 0 {
			unlabelled[d] = fmt.Sprintf("%d of %s unlabelled", s.Unlabelled, words.Count(s.Rows, "row"))
		}
	}
	p := pairsProtocol(store.Meta, unlabelled)
	labelled, notes := []string{}, []string{}
	for _, d := range p.Domains {
		if note, ok := unlabelled[d]; ok {
			notes = append(notes, d+" ("+note+")")
		} else {
			labelled = append(labelled, d)
		}
	}
	if len(labelled) < 2 {
		has := words.Count(len(labelled), "fully labelled domain")
		if len(labelled) > 0 {
			has += " (" + strings.Join(labelled, ", ") + ")"
		}
		return Protocol{}, fmt.Errorf("bench: %s: protocol %s needs at least 2 fully labelled domains (a labelled source to train on, a labelled target to score), but the store has %s; not fully labelled: %s. Label them, or add labelled domains with unimos import",
			filepath.Join(store.Dir, features.DatasetFile), Pairs, has, strings.Join(notes, ", "))
	}
	return p, nil
}

// pairsProtocol is the pairs protocol of a dataset: every ordered pair of
// its domains but those noted unlabelled. Reports, which read finished runs
// only, build it with no notes.
func pairsProtocol(ds features.Dataset, unlabelled map[string]string) Protocol {
	p := withAllPairs(Protocol{
		Name: Pairs, Title: ds.Name + " (pairs of domains)", Preset: PairsPreset,
		Domains: ds.Domains, Short: ds.Domains, unlabelled: unlabelled,
	})
	p.Tasks = slices.DeleteFunc(p.Tasks, func(t Task) bool {
		return unlabelled[t.Source] != "" || unlabelled[t.Target] != ""
	})
	return p
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
		task, err := p.parseTask(item)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(tasks, task) {
			tasks = append(tasks, task)
		}
	}
	return tasks, nil
}

// parseTask reads one task, "S->T", and says what is wrong with one that
// is not among p's tasks.
func (p Protocol) parseTask(item string) (Task, error) {
	src, tgt, ok := strings.Cut(item, "->")
	src, tgt = strings.TrimSpace(src), strings.TrimSpace(tgt)
	s, okS := p.domain(src)
	t, okT := p.domain(tgt)
	task := Task{s, t}
	if ok && okS && okT && slices.Contains(p.Tasks, task) {
		return task, nil
	}
	why := ""
	switch {
	case !ok:
		why = "write a task as SOURCE->TARGET"
	case !okS || !okT:
		unknown := src
		if okS {
			unknown = tgt
		}
		why = fmt.Sprintf("there is no domain %q (domains: %s)", unknown, strings.Join(p.Domains, ", "))
	case s == t:
		why = "the source and the target are the same domain"
	case p.unlabelled[s] != "" || p.unlabelled[t] != "":
		d := s
		if p.unlabelled[d] == "" {
			d = t
		}
		why = fmt.Sprintf("domain %s is not fully labelled (%s)", d, p.unlabelled[d])
	}
	var valid []string
	for _, t := range p.Tasks {
		valid = append(valid, p.TaskName(t))
	}
	if why != "" {
		why = ": " + why
	}
	return task, fmt.Errorf("protocol %s has no task %q%s (tasks: %s)", p.Name, item, why, strings.Join(valid, ", "))
}

// CheckStore reports the domains that tasks need and the store lacks, a
// source with unlabelled rows and a target without labels.
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
	// A bench trains on its sources, which need every label, and scores its
	// targets, which need some; a run would otherwise find out only at its
	// end.
	for _, t := range tasks {
		for _, d := range []string{t.Source, t.Target} {
			s, err := store.Summary(d)
			if err != nil {
				return err
			}
			switch {
			case d == t.Source && s.Unlabelled > 0:
				return fmt.Errorf("domain %s of %s has %d of %s unlabelled, so it cannot be the source of %s: UniMoS trains on a labelled source",
					d, store.Dir, s.Unlabelled, words.Count(s.Rows, "row"), p.TaskName(t))
			case d == t.Target && s.Unlabelled == s.Rows:
				return fmt.Errorf("domain %s of %s is unlabelled, so task %s cannot be scored: a bench needs target labels; adapt to an unlabelled target with 'unimos adapt'",
					d, store.Dir, p.TaskName(t))
			}
		}
	}
	return nil
}
