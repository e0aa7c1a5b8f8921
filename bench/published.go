package bench

import "math"

// Published is a table of the UniMoS paper (Li et al., "Split to Merge:
// Unifying Separated Modalities for Unsupervised Domain Adaptation", CVPR
// 2024), copied from the project's shared docs/published-results.md. The
// numbers were measured on the authors' CLIP features of the real datasets:
// reports show them beside ours, never inside our averages.
type Published struct {
	Source string // table and backbone, e.g. "Tab. 1, CLIP RN50"
	Rows   []PublishedRow
}

// PublishedRow is one method's row as printed: cells keyed by task name
// ("A->C") or, for VisDA-2017, by class name; Avg is the printed average.
type PublishedRow struct {
	Method string
	Cells  map[string]float64
	Avg    float64
}

// publishedRow builds a row from values in column order followed by the average.
func publishedRow(method string, columns []string, values ...float64) PublishedRow {
	if len(values) != len(columns)+1 {
		panic("bench: published row " + method + " does not match its columns")
	}
	r := PublishedRow{Method: method, Cells: map[string]float64{}, Avg: values[len(columns)]}
	for i, c := range columns {
		r.Cells[c] = values[i]
	}
	return r
}

var officeHomeColumns = []string{"A->C", "A->P", "A->R", "C->A", "C->P", "C->R", "P->A", "P->C", "P->R", "R->A", "R->C", "R->P"}

// officeHomePublished is Tab. 1 (Office-Home, ResNet-50 / CLIP RN50). A
// star marks CLIP-based methods.
var officeHomePublished = Published{
	Source: "Tab. 1, ResNet-50 / CLIP RN50",
	Rows: []PublishedRow{
		publishedRow("SourceOnly", officeHomeColumns, 34.9, 50.0, 58.0, 37.4, 41.9, 46.2, 38.5, 31.2, 60.4, 53.9, 41.2, 59.9, 46.1),
		publishedRow("ParetoDA", officeHomeColumns, 56.8, 75.9, 80.5, 64.4, 73.5, 73.7, 65.6, 55.2, 81.3, 75.2, 61.1, 83.9, 70.6),
		publishedRow("SDAT", officeHomeColumns, 58.2, 77.1, 82.2, 66.3, 77.6, 76.8, 63.3, 57.0, 82.2, 74.9, 64.7, 86.0, 72.2),
		publishedRow("MSGD", officeHomeColumns, 58.7, 76.9, 78.9, 70.1, 76.2, 76.6, 69.0, 57.2, 82.3, 74.9, 62.7, 84.5, 72.3),
		publishedRow("FixBi", officeHomeColumns, 58.1, 77.3, 80.4, 67.7, 79.5, 78.1, 65.8, 57.9, 81.7, 76.4, 62.9, 86.7, 72.7),
		publishedRow("CST", officeHomeColumns, 59.0, 79.6, 83.4, 68.4, 77.1, 76.7, 68.9, 56.4, 83.0, 75.3, 62.2, 85.1, 72.9),
		publishedRow("ATDOC", officeHomeColumns, 60.2, 77.8, 82.2, 68.5, 78.6, 77.9, 68.4, 58.4, 83.1, 74.8, 61.5, 87.2, 73.2),
		publishedRow("KUDA", officeHomeColumns, 58.2, 80.0, 82.9, 71.1, 80.3, 80.7, 71.3, 56.8, 83.2, 75.5, 60.3, 86.6, 73.9),
		publishedRow("EIDCo", officeHomeColumns, 63.8, 80.8, 82.6, 71.5, 80.1, 80.9, 72.1, 61.3, 84.5, 78.6, 65.8, 87.1, 75.8),
		publishedRow("ICON", officeHomeColumns, 63.3, 81.3, 84.5, 70.3, 82.1, 81.0, 70.3, 61.8, 83.7, 75.6, 68.6, 87.3, 75.8),
		publishedRow("PADCLIP* (full-tuning)", officeHomeColumns, 57.5, 84.0, 83.8, 77.8, 85.5, 84.7, 76.3, 59.2, 85.4, 78.1, 60.2, 86.7, 76.6),
		publishedRow("CLIP* zero-shot", officeHomeColumns, 51.7, 81.5, 82.3, 71.7, 81.5, 82.3, 71.7, 51.7, 82.3, 71.7, 51.7, 81.5, 71.8),
		publishedRow("DAPrompt*", officeHomeColumns, 54.1, 84.3, 84.8, 74.4, 83.7, 85.0, 74.5, 54.6, 84.8, 75.2, 54.7, 83.8, 74.5),
		publishedRow("ADCLIP*", officeHomeColumns, 55.4, 85.2, 85.6, 76.1, 85.8, 86.2, 76.7, 56.1, 85.4, 76.8, 56.1, 85.5, 75.9),
		publishedRow("UniMoS*", officeHomeColumns, 59.5, 89.4, 86.9, 75.2, 89.6, 86.8, 75.4, 58.4, 87.2, 76.9, 59.5, 89.7, 77.9),
	},
}

// visdaColumns are the VisDA-2017 classes in the paper's column order
// (plane, bcycl, bus, car, horse, knife, mcycl, person, plant, sktbrd,
// train, truck), named as in the dataset.
var visdaColumns = []string{"aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person", "plant", "skateboard", "train", "truck"}

// visdaPublished is Tab. 2 (VisDA-2017, ResNet-101 / CLIP RN101):
// per-class accuracy, Avg = mean over classes.
var visdaPublished = Published{
	Source: "Tab. 2, ResNet-101 / CLIP RN101",
	Rows: []PublishedRow{
		publishedRow("SourceOnly", visdaColumns, 55.1, 53.3, 61.9, 59.1, 80.6, 17.9, 79.7, 31.2, 81.0, 26.5, 73.5, 8.5, 52.4),
		publishedRow("ParetoDA", visdaColumns, 95.9, 82.8, 81.3, 58.7, 93.9, 93.7, 85.9, 83.0, 91.9, 92.0, 87.1, 51.8, 83.2),
		publishedRow("MSGD", visdaColumns, 97.5, 83.4, 84.4, 69.4, 95.9, 94.1, 90.9, 75.5, 95.5, 94.6, 88.1, 44.9, 84.5),
		publishedRow("ATDOC", visdaColumns, 95.3, 84.7, 82.4, 75.6, 95.8, 97.7, 88.7, 76.6, 94.0, 91.7, 91.5, 61.9, 86.3),
		publishedRow("CAN", visdaColumns, 97.0, 87.2, 82.5, 74.3, 97.8, 96.2, 90.8, 80.7, 96.6, 96.3, 87.5, 59.9, 87.2),
		publishedRow("FixBi", visdaColumns, 96.1, 87.8, 90.5, 90.3, 96.8, 95.3, 92.8, 88.7, 97.2, 94.2, 90.9, 25.7, 87.2),
		publishedRow("PADCLIP* (full-tuning)", visdaColumns, 96.7, 88.8, 87.0, 82.8, 97.1, 93.0, 91.3, 83.0, 95.5, 91.8, 91.5, 63.0, 88.5),
		publishedRow("CLIP* zero-shot", visdaColumns, 98.2, 83.9, 90.5, 73.5, 97.2, 84.0, 95.3, 65.7, 79.4, 89.9, 91.8, 63.3, 84.4),
		publishedRow("DAPrompt*", visdaColumns, 97.8, 83.1, 88.8, 77.9, 97.4, 91.5, 94.2, 79.7, 88.6, 89.3, 92.5, 62.0, 86.9),
		publishedRow("ADCLIP*", visdaColumns, 98.1, 83.6, 91.2, 76.6, 98.1, 93.4, 96.0, 81.4, 86.4, 91.5, 92.1, 64.2, 87.7),
		publishedRow("UniMoS*", visdaColumns, 97.7, 88.2, 90.1, 74.6, 96.8, 95.8, 92.4, 84.1, 90.8, 89.0, 91.8, 65.3, 88.1),
	},
}

// domainNetShort orders the rows and columns of Tab. 3's blocks.
var domainNetShort = []string{"clp", "inf", "pnt", "qdr", "rel", "skt"}

// domainNetBlock turns a block of Tab. 3 into a row. In the CLIP-based
// blocks a row is the target and a column the source (see the orientation
// note in published-results.md): byTarget[t][s] is the accuracy of s->t,
// with anything on the diagonal. overall is the block's bottom-right mean.
func domainNetBlock(method string, overall float64, byTarget [6][6]float64) PublishedRow {
	r := PublishedRow{Method: method, Cells: map[string]float64{}, Avg: overall}
	for t, target := range domainNetShort {
		for s, source := range domainNetShort {
			if s != t {
				r.Cells[source+"->"+target] = byTarget[t][s]
			}
		}
	}
	return r
}

// constantRows fills each target's row with one value: CLIP zero-shot
// depends only on the target.
func constantRows(perTarget ...float64) [6][6]float64 {
	var b [6][6]float64
	for t, v := range perTarget {
		for s := range b[t] {
			b[t][s] = v
		}
	}
	return b
}

var nan = math.NaN()

// domainNetPublished holds the CLIP-based blocks of Tab. 3 (DomainNet,
// CLIP ViT-B). The non-CLIP blocks are left out: their orientation differs
// and they use other backbones.
var domainNetPublished = Published{
	Source: "Tab. 3, CLIP ViT-B (row = target in the paper's CLIP blocks)",
	Rows: []PublishedRow{
		domainNetBlock("CLIP-B* zero-shot", 56.2, constantRows(70.1, 46.4, 61.7, 13.7, 82.9, 62.6)),
		domainNetBlock("DAPrompt-B*", 59.8, [6][6]float64{
			{nan, 73.0, 73.8, 72.6, 73.9, 73.5},
			{50.8, nan, 50.1, 49.6, 50.6, 50.3},
			{70.2, 69.6, nan, 68.9, 70.4, 69.9},
			{17.2, 14.4, 13.9, nan, 14.3, 13.9},
			{84.9, 84.8, 84.9, 84.7, nan, 84.6},
			{65.8, 65.4, 65.8, 64.9, 65.9, nan},
		}),
		domainNetBlock("PADCLIP-B* (full-tuning)", 63.7, [6][6]float64{
			{nan, 73.6, 75.4, 74.6, 76.4, 76.3},
			{55.1, nan, 54.3, 53.6, 54.9, 54.9},
			{71.1, 70.6, nan, 70.0, 72.7, 71.7},
			{36.8, 18.0, 32.0, nan, 31.7, 34.9},
			{84.2, 83.5, 83.5, 83.1, nan, 83.6},
			{68.1, 66.6, 67.2, 66.1, 67.5, nan},
		}),
		domainNetBlock("UniMoS-B*", 63.6, [6][6]float64{
			{nan, 76.5, 77.2, 76.6, 77.5, 77.8},
			{55.1, nan, 55.0, 54.6, 55.3, 55.2},
			{72.3, 71.5, nan, 69.4, 72.5, 72.6},
			{25.0, 22.9, 23.6, nan, 23.7, 25.1},
			{86.0, 85.9, 85.8, 85.5, nan, 85.9},
			{68.5, 67.8, 68.2, 67.5, 68.0, nan},
		}),
	},
}

// domainNet126Published is Tab. 4 (Mini-DomainNet, i.e. DomainNet-126):
// the paper gives only average accuracies; per-task numbers are in its
// supplementary material, which is not available.
var domainNet126Published = Published{
	Source: "Tab. 4, averages only, CLIP RN50 and ViT-B",
	Rows: []PublishedRow{
		{Method: "CLIP* zero-shot (RN50)", Avg: 71.2},
		{Method: "DAPrompt* (RN50)", Avg: 74.8},
		{Method: "ADCLIP* (RN50)", Avg: 75.2},
		{Method: "UniMoS* (RN50)", Avg: 78.0},
		{Method: "CLIP* zero-shot (ViT-B)", Avg: 82.8},
		{Method: "DAPrompt* (ViT-B)", Avg: 85.8},
		{Method: "ADCLIP* (ViT-B)", Avg: 86.9},
		{Method: "UniMoS* (ViT-B)", Avg: 87.3},
	},
}
