/// The Root System Description Pointer, revision 2 (ACPI 6.5 §5.2.5.3), 36 bytes. Linux
/// finds it by scanning 0xE0000–0xFFFFF on 16-byte boundaries (or through
/// `boot_params.acpi_rsdp_addr`). It points only at the XSDT; RsdtAddress is 0.
func rootSystemDescriptionPointer(xsdtAddress: UInt64) -> [UInt8] {
    var t = TableBytes()
    t.ascii("RSD PTR ", length: 8)
    t.u8(0)  // Checksum over the first 20 bytes (the ACPI 1.0 structure)
    t.ascii(ACPIIdentity.oemID, length: 6)
    t.u8(2)  // Revision: 2 = ACPI 2.0+ layout with XSDT
    t.u32(0)  // RsdtAddress
    t.u32(36)  // Length
    t.u64(xsdtAddress)
    t.u8(0)  // Extended checksum over all 36 bytes
    t.zeros(3)
    t.fixChecksum(at: 8, over: 0..<20)
    t.fixChecksum(at: 32, over: 0..<36)
    return t.bytes
}

/// The Extended System Description Table: 64-bit pointers to every table except the
/// DSDT (which the FADT points to).
func extendedSystemDescriptionTable(entries: [UInt64]) -> [UInt8] {
    var body = TableBytes()
    for e in entries { body.u64(e) }
    return systemDescriptionTable(signature: "XSDT", revision: 1, body: body.bytes)
}
