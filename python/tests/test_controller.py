"""Controllers from handles, Identify, and raw block I/O through the buffer protocol."""
import concurrent.futures

import numpy as np
import pytest

import aisio


def test_identify_and_namespaces(embedded):
    idn = embedded.identify()
    assert idn["controller"]["mn"].startswith("aisio"), idn["controller"]
    assert idn["handle"] == "embedded:64M"
    ns = embedded.namespaces()
    assert [n["nsid"] for n in ns] == [1]
    assert ns[0]["bytes"] == 64 << 20 and ns[0]["lba_size"] * ns[0]["blocks"] == ns[0]["bytes"]


def test_raw_round_trip_numpy_bytearray_and_out(embedded):
    lba = embedded.lba_size(1)
    rng = np.random.default_rng(1)
    # Larger than one bounce round trip (1 MiB), and not a whole number of blocks.
    data = rng.integers(0, 256, size=(3 << 20) + 100, dtype=np.uint8)
    embedded.write(1, 1000, data)
    nlb = -(-data.size // lba)
    back = embedded.read(1, 1000, nlb)
    assert back.dtype == np.uint8 and back.size == nlb * lba
    assert np.array_equal(back[:data.size], data)
    assert not back[data.size:].any(), "the last block is zero padded"
    out = bytearray(4 * lba)
    assert embedded.read(1, 1000, 4, out=out) is out
    assert bytes(out) == data[:4 * lba].tobytes()
    # Another block range is untouched.
    assert not embedded.read(1, 0, 8).any()


def test_async_forms_return_futures(embedded):
    lba = embedded.lba_size(1)
    blocks = [np.full(8 * lba, i, dtype=np.uint8) for i in range(1, 9)]
    writes = [embedded.write_async(1, 5000 + 8 * i, b) for i, b in enumerate(blocks)]
    assert all(isinstance(f, concurrent.futures.Future) for f in writes)
    concurrent.futures.wait(writes)
    for f in writes:
        f.result()
    reads = [embedded.read_async(1, 5000 + 8 * i, 8) for i in range(8)]
    for i, f in enumerate(reads):
        assert np.array_equal(f.result(), blocks[i])


def test_read_into_a_too_small_or_read_only_buffer(embedded):
    with pytest.raises(aisio.Error) as e:
        embedded.read(1, 0, 4, out=bytearray(100))
    assert e.value.category == "invalid argument" and "buffer holds 100 bytes" in str(e.value)
    with pytest.raises(aisio.Error) as e:
        embedded.read(1, 0, 1, out=bytes(4096))
    assert "read-only" in str(e.value)


def test_lba_out_of_range_names_the_nvme_status(embedded):
    blocks = embedded.namespaces()[0]["blocks"]
    with pytest.raises(aisio.Error) as e:
        embedded.read(1, blocks - 2, 4)
    assert e.value.category == "NVMe status"
    assert e.value.status == "LBA Out of Range"
    assert isinstance(e.value.status_code, int) and e.value.status_code & 0xFF == 0x80
    assert "LBA Out of Range" in str(e.value)
    with pytest.raises(aisio.Error) as e:
        embedded.write(1, blocks, np.zeros(512, dtype=np.uint8))
    assert e.value.status == "LBA Out of Range"
    # The controller goes on working.
    assert embedded.read(1, 0, 1).size == embedded.lba_size(1)


def test_bad_handle_is_a_clear_error():
    with pytest.raises(aisio.Error) as e:
        aisio.open("nonsense:handle")
    assert e.value.category == "invalid argument"
    assert "embedded" in str(e.value)  # the message lists the handle forms
