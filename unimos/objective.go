package unimos

import (
	"github.com/unimos/unimos/nn"
	"github.com/unimos/unimos/tensor"
)

// The training objective of UniMoS, one function per term of the paper
// (Li et al., CVPR 2024; equation numbers are the paper's, sections those of
// docs/method.md, which maps each equation to its code and lists where the
// reference code differs). One
// iteration draws a source batch (features, labels y^s) and a target batch
// (features, pseudo-labels ŷ^t) and minimises, in one backward pass,
//
//	L = L_vac + L_lac + γ·L_ortho + γ·L_bce^s        (Eq. 17, section 3.6)
//	L_vac = CE(ŷ_ens^t, ŷ^t) + β·CE(ŷ_vac^s, y^s) + L_im    (Eq. 15)
//	L_lac = α·CE(ŷ_lac^s, y^s) + KL(ŷ_lac^t ‖ ŷ_zs^t)        (Eq. 7)
//
// plus γ·L_bce^t, the target discriminator loss that trains the separators
// alone (Eq. 16; see Trainer.step). Each ablation of Table 5 drops one term.

// iterationGraph is one iteration's forward pass, recorded on the tape.
type iterationGraph struct {
	total               *nn.Var // L, the main loss (Eq. 17)
	targetDiscriminator *nn.Var // γ·L_bce^t with D frozen; nil without the discriminator
	weight              *nn.Var // the MET weight w [1, 1]
}

// forward draws the next source and target batches and records the
// objective on a fresh tape. It also moves the class prior p̂ (Eq. 9).
func (tr *Trainer) forward() iterationGraph {
	cfg, m, t := tr.cfg, tr.Model, tr.tape
	t.Reset()
	src, tgt := tr.sourceBatches.Next(), tr.targetBatches.Next()
	ns, nt := len(src), len(tgt)
	x := gatherRows(rowSet{tr.task.SourceFeatures, src}, rowSet{tr.task.TargetFeatures, tgt}) // [ns+nt, d]
	sourceLabels := pick(tr.task.SourceLabels, src)
	pseudoLabels := pick(tr.pseudo, tgt)
	teacher := nn.NewConst(gatherRows(rowSet{tr.teacher, tgt})) // ŷ_zs^t [nt, K]

	// Modality separation and the two classifiers (LAC: Eq. 4; section 2).
	vac, lac := m.Separate(t, nn.NewConst(x))                    // f_vac, f_lac [ns+nt, d]
	vacLogits := m.VisionLogits(t, m.BottleneckFeatures(t, vac)) // ŷ_vac [ns+nt, K]
	lacLogits := m.LanguageLogits(t, lac)                        // ŷ_lac [ns+nt, K]
	vacSource, vacTarget := t.SliceRows(vacLogits, 0, ns), t.SliceRows(vacLogits, ns, ns+nt)
	lacSource, lacTarget := t.SliceRows(lacLogits, 0, ns), t.SliceRows(lacLogits, ns, ns+nt)

	// Modality-Ensemble Training (Eq. 11): the language logits are a fixed
	// target, so only the vision branch and W learn from the ensemble.
	w := tr.metWeight(t.SliceRows(vac, ns, ns+nt)) // [1, 1]
	language := nn.Detach(lacTarget)
	if cfg.Variants.DebiasedEnsemble { // the paper; the code mixes raw logits
		debiased := lacTarget.Value.Clone()
		tr.prior.debias(debiased, debiased, float32(cfg.Tau))
		language = nn.NewConst(debiased)
	}
	ensemble := ensembleLogits(t, vacTarget, language, w) // ŷ_ens^t [nt, K]
	tr.prior.update(lacTarget.Value, float32(cfg.PriorMomentum))

	// The terms are summed in this order, which the reported loss depends on
	// in its last bits: L_vac's cross-entropies, L_lac, then L_im.
	terms := []*nn.Var{
		t.CrossEntropy(ensemble, pseudoLabels),                               // L_vac, target
		t.Scale(t.CrossEntropy(vacSource, sourceLabels), float32(cfg.Beta)),  // L_vac, source
		t.Scale(t.CrossEntropy(lacSource, sourceLabels), float32(cfg.Alpha)), // L_lac, source
	}
	if !cfg.Ablations.NoDistill {
		terms = append(terms, distillation(t, lacTarget, teacher)) // L_lac, target
	}
	if !cfg.Ablations.NoEntropy {
		terms = append(terms, informationMaximisation(t, ensemble)) // L_vac, L_im
	}
	if !cfg.Ablations.NoOrtho {
		terms = append(terms, t.Scale(orthogonality(t, cfg.Variants.Ortho, lac, vac, ns), float32(cfg.Gamma)))
	}
	g := iterationGraph{weight: w}
	if !cfg.Ablations.NoDiscriminator {
		source := modalityLoss(t, m, t.SliceRows(vac, 0, ns), t.SliceRows(lac, 0, ns), false)
		target := modalityLoss(t, m, t.SliceRows(vac, ns, ns+nt), t.SliceRows(lac, ns, ns+nt), true)
		terms = append(terms, t.Scale(source, float32(cfg.Gamma)))
		g.targetDiscriminator = t.Scale(target, float32(cfg.Gamma))
	}
	g.total = terms[0]
	for _, term := range terms[1:] {
		g.total = t.Add(g.total, term)
	}
	return g
}

// metWeight is the MET weight w (Eq. 11): W's batch mean on the target
// vision-associated components, or 0.5 in the ablation without it.
func (tr *Trainer) metWeight(targetVAC *nn.Var) *nn.Var {
	if tr.cfg.Ablations.FixedMETWeight {
		return nn.NewConst(scalar(0.5))
	}
	return tr.Model.METWeight(tr.tape, targetVAC)
}

// ensembleLogits is the modality ensemble (Eq. 11), vision [N, K] and
// language [N, K] logits mixed with the weight w [1, 1] of the vision
// logits: w·ŷ_vac + (1−w)·ŷ_lac. Training mixes with the learned MET weight
// and the raw language logits; the test (section 5) with the fixed weight
// l_e and the debiased ones.
func ensembleLogits(t *nn.Tape, vision, language, w *nn.Var) *nn.Var {
	return t.Add(t.MulScalar(vision, w), t.MulScalar(language, t.Sub(nn.NewConst(scalar(1)), w)))
}

// distillation is L_lac's target term (Eq. 7): the zero-shot teacher's
// knowledge distilled into the language-associated logits [nt, K]. The
// reference computes KL(student ‖ teacher), the reverse of the paper's
// notation (section 3.1).
func distillation(t *nn.Tape, lacTarget, teacher *nn.Var) *nn.Var {
	return t.KLWithLogits(lacTarget, teacher)
}

// imEpsilon is the constant inside the logarithms of the reference's
// entropy and gentropy.
const imEpsilon = 1e-5

// informationMaximisation is L_im (Eq. 12-14) on logits [N, K]:
//
//	P = softmax(logits), p̄ = (1/N) Σ_i P_i,
//	L_im = −(1/N) Σ_i Σ_k P_ik log(P_ik + ε) + Σ_k p̄_k log(p̄_k + ε),  ε = 1e-5,
//
// the mean per-row entropy minus the entropy of the batch-mean prediction
// (the paper's q̄ has a stray minus sign; section 3.3). Minimising it makes
// single predictions confident and the batch diverse.
func informationMaximisation(t *nn.Tape, logits *nn.Var) *nn.Var {
	p := t.Softmax(logits)
	meanEntropy := t.Scale(t.Sum(t.XLogX(p, imEpsilon)), -1/float32(logits.Value.Rows))
	negBatchEntropy := t.Sum(t.XLogX(t.ColumnMean(p), imEpsilon))
	return t.Add(meanEntropy, negBatchEntropy)
}

// orthogonality is L_ortho (Eq. 3) between f_lac and f_vac of a joint batch
// [N, d] whose first ns rows are source, in the configured form (section
// 3.4); each is a sum, not a mean:
//
//	OrthoDiagonal:    Σ_i (f_lac,i · f_vac,i)², the reference code (default)
//	OrthoElementwise: Σ_ij (f_lac,ij · f_vac,ij)², its first release
//	OrthoPaper:       ‖F_lac^s F_vac^sᵀ‖²_F + ‖F_lac^t F_vac^tᵀ‖²_F
func orthogonality(t *nn.Tape, form string, lac, vac *nn.Var, ns int) *nn.Var {
	squaredSum := func(m *nn.Var) *nn.Var { return t.Sum(t.Mul(m, m)) }
	switch form {
	case OrthoElementwise:
		return squaredSum(t.Mul(lac, vac))
	case OrthoPaper:
		n := vac.Value.Rows
		cross := func(lo, hi int) *nn.Var {
			return squaredSum(t.MatMul(false, true, t.SliceRows(lac, lo, hi), t.SliceRows(vac, lo, hi)))
		}
		return t.Add(cross(0, ns), cross(ns, n))
	default:
		return squaredSum(t.RowSum(t.Mul(lac, vac)))
	}
}

// modalityLoss is L_bce (Eq. 16) of one domain: the modality
// discriminator's binary cross-entropy on the vision-associated [n, d]
// (label 0) and language-associated [n, d] (label 1) components. With
// frozen, D passes gradient to the components but does not learn: on the
// target it trains the separators alone (section 3.5).
func modalityLoss(t *nn.Tape, m *Model, vac, lac *nn.Var, frozen bool) *nn.Var {
	n := vac.Value.Rows
	labels := make([]float32, 2*n) // [vac rows; lac rows]
	for i := n; i < 2*n; i++ {
		labels[i] = 1
	}
	return t.BCEWithLogits(m.Discriminate(t, t.ConcatRows(vac, lac), frozen), labels)
}

func scalar(v float32) *tensor.Matrix { return tensor.FromSlice(1, 1, []float32{v}) }
