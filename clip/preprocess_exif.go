package clip

import (
	"bytes"
	"encoding/binary"
)

// exifOrientationTag is the TIFF/EXIF Orientation tag (0x0112).
const exifOrientationTag = 0x0112

// exifOrientation returns the EXIF Orientation (1..8) of a JPEG, PNG or WebP file, or
// 1 (as stored) when the file has none or it cannot be read.
func exifOrientation(data []byte) int {
	var tiff []byte
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8}):
		tiff = jpegExif(data)
	case bytes.HasPrefix(data, pngSignature):
		tiff = pngExif(data)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		tiff = webpExif(data)
	}
	return tiffOrientation(bytes.TrimPrefix(tiff, []byte("Exif\x00\x00")))
}

// jpegExif returns the payload of the first APP1 segment holding EXIF data.
func jpegExif(data []byte) []byte {
	for i := 2; i+4 <= len(data) && data[i] == 0xFF; {
		marker := data[i+1]
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 || marker == 0xFF {
			i++ // standalone marker or fill byte
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return nil
		}
		end := i + 2 + int(binary.BigEndian.Uint16(data[i+2:]))
		if end > len(data) {
			return nil
		}
		if payload := data[i+4 : end]; marker == 0xE1 && bytes.HasPrefix(payload, []byte("Exif\x00\x00")) {
			return payload
		}
		i = end
	}
	return nil
}

// pngExif returns the contents of the eXIf chunk.
func pngExif(data []byte) []byte {
	for i := 8; i+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[i:]))
		if n < 0 || i+12+n > len(data) {
			return nil
		}
		if string(data[i+4:i+8]) == "eXIf" {
			return data[i+8 : i+8+n]
		}
		i += 12 + n
	}
	return nil
}

// webpExif returns the contents of the EXIF chunk of an extended WebP file.
func webpExif(data []byte) []byte {
	for i := 12; i+8 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[i+4:]))
		if n < 0 || i+8+n > len(data) {
			return nil
		}
		if string(data[i:i+4]) == "EXIF" {
			return data[i+8 : i+8+n]
		}
		i += 8 + n + n%2 // chunks are padded to even length
	}
	return nil
}

// tiffOrientation reads the Orientation entry of the first IFD of a TIFF structure.
func tiffOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(tiff[4:]))
	if ifd+2 > int64(len(tiff)) {
		return 1
	}
	count := int(order.Uint16(tiff[ifd:]))
	for e := range count {
		entry := ifd + 2 + 12*int64(e)
		if entry+12 > int64(len(tiff)) {
			return 1
		}
		const typeShort = 3
		if order.Uint16(tiff[entry:]) == exifOrientationTag && order.Uint16(tiff[entry+2:]) == typeShort {
			if o := int(order.Uint16(tiff[entry+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}
