// Package features reads and writes the feature store: the on-disk contract
// between feature extraction and training (see README "Feature store").
package features

import (
	"errors"

	"github.com/unimos/unimos/tensor"
)

// Dataset is the content of DIR/dataset.json.
type Dataset struct {
	Name     string   `json:"name"`
	Backbone string   `json:"backbone"`
	Dim      int      `json:"dim"`
	Classes  []string `json:"classes"`
	Domains  []string `json:"domains"`
}

// DType names the storage type of features in a domain file.
type DType string

// Storage types accepted for features.
const (
	F16 DType = "F16"
	F32 DType = "F32"
)

// Domain is one domain's image features, loaded into memory.
type Domain struct {
	Name     string
	Features *tensor.Matrix // [N, Dim], rows unit-norm
	Labels   []int          // [N], -1 = unknown
	Paths    []string       // optional, len N when present
	DType    DType          // how the features were (or are to be) stored
}

var errTODO = errors.New("features: not implemented yet")

// Store is an opened feature store directory.
type Store struct {
	Dir  string
	Meta Dataset
}

// Open reads and validates DIR/dataset.json.
func Open(dir string) (*Store, error) { return nil, errTODO }

// Domain loads and validates one domain's image features and labels.
func (s *Store) Domain(name string) (*Domain, error) { return nil, errTODO }

// Text loads and validates the [K, Dim] text features of a domain.
func (s *Store) Text(name string) (*tensor.Matrix, error) { return nil, errTODO }

// WriteDataset writes DIR/dataset.json atomically, creating DIR.
func WriteDataset(dir string, meta Dataset) error { return errTODO }

// WriteDomain writes DIR/<Name>.safetensors (and <Name>.paths.txt when Paths is set) atomically.
func WriteDomain(dir string, d *Domain) error { return errTODO }

// WriteText writes DIR/text/<domain>.safetensors atomically.
func WriteText(dir, domain string, text *tensor.Matrix) error { return errTODO }
