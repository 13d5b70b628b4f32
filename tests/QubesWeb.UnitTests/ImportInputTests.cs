// What an import reads from the user and from files beside the image: digests as people paste them, checksum files
// as Debian, Ubuntu and Fedora publish them, image headers the console refuses, and the name it suggests.
using System.Buffers.Binary;
using QubesWeb.Components.Pages.Templates;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Templates;

namespace QubesWeb.UnitTests;

public sealed class ImportInputTests : IDisposable
{
    private static readonly string Hex64 = string.Concat(Enumerable.Repeat("0123456789abcdef", 4));
    private static readonly string Hex128 = Hex64 + Hex64;
    private readonly string _dir = Directory.CreateTempSubdirectory("qubesweb-import-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", ChecksumAlgorithm.Sha256)]
    [InlineData("  sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", ChecksumAlgorithm.Sha256)]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  debian.qcow2", ChecksumAlgorithm.Sha256)]
    [InlineData("SHA256 (Fedora.qcow2) = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ChecksumAlgorithm.Sha256)]
    public void A_digest_is_read_as_people_paste_it(string text, ChecksumAlgorithm algorithm)
    {
        var c = ImageChecksum.Parse(text);
        Assert.Equal(algorithm, c.Algorithm);
        Assert.Equal(Hex64, c.Hex);
        Assert.Equal("typed", c.Source);
    }

    [Fact]
    public void A_SHA512_is_told_by_its_length_and_a_wrong_length_or_a_mislabelled_one_is_refused()
    {
        Assert.Equal(ChecksumAlgorithm.Sha512, ImageChecksum.Parse("sha512:" + Hex128).Algorithm);
        Assert.StartsWith("The checksum is not a SHA-256", Assert.Throws<QubeRuleException>(() => ImageChecksum.Parse(Hex64[..63])).Message);
        Assert.StartsWith("The checksum is not a SHA-256", Assert.Throws<QubeRuleException>(() => ImageChecksum.Parse(Hex64 + "0")).Message);
        Assert.StartsWith("The checksum is not a SHA-256", Assert.Throws<QubeRuleException>(() => ImageChecksum.Parse("md5:" + Hex64)).Message);
        Assert.Equal("The checksum says SHA256 but has 128 digits; a SHA-256 has 64 and a SHA-512 has 128.",
            Assert.Throws<QubeRuleException>(() => ImageChecksum.Parse("sha256:" + Hex128)).Message);
    }

    [Fact]
    public void A_checksum_file_beside_the_image_is_found_by_the_image_name_and_SHA512_is_preferred()
    {
        var image = Path.Combine(_dir, "debian-12-genericcloud-amd64.qcow2");
        File.WriteAllText(image, "");
        Assert.Null(ImageChecksum.FindBeside(image));

        File.WriteAllText(Path.Combine(_dir, "SHA256SUMS"), $"{Hex64} *debian-12-genericcloud-amd64.qcow2\n");
        var found = ImageChecksum.FindBeside(image)!;
        Assert.Equal((ChecksumAlgorithm.Sha256, Hex64, Path.Combine(_dir, "SHA256SUMS")), (found.Algorithm, found.Hex, found.Source));

        // Another image's line, or one that only ends in the same name, is not this image's.
        File.WriteAllText(Path.Combine(_dir, "SHA512SUMS"), $"{new string('f', 128)}  old-debian-12-genericcloud-amd64.qcow2\n{Hex128.ToUpperInvariant()}  debian-12-genericcloud-amd64.qcow2\n");
        found = ImageChecksum.FindBeside(image)!;
        Assert.Equal((ChecksumAlgorithm.Sha512, Hex128), (found.Algorithm, found.Hex));
    }

    [Fact]
    public void Fedoras_BSD_style_CHECKSUM_file_is_read()
    {
        var image = Path.Combine(_dir, "Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2");
        File.WriteAllText(image, "");
        File.WriteAllText(Path.Combine(_dir, "Fedora-Cloud-42-1.1-x86_64-CHECKSUM"),
            $"-----BEGIN PGP SIGNED MESSAGE-----\n# Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2: 1 bytes\nSHA256 (Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2) = {Hex64}\n");
        Assert.Equal(Hex64, ImageChecksum.FindBeside(image)!.Hex);
    }

    [Fact]
    public async Task A_files_digest_is_computed_over_all_of_it()
    {
        var file = Path.Combine(_dir, "data");
        var bytes = new byte[(9 << 20) + 3];
        new Random(7).NextBytes(bytes);
        File.WriteAllBytes(file, bytes);
        var shares = new List<double>();

        var sha = await ImageChecksum.ComputeAsync(file, ChecksumAlgorithm.Sha512, shares.Add, CancellationToken.None);

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(bytes)), sha);
        Assert.Equal(1.0, shares[^1]);
    }

    private string Header(Action<byte[]> write, int length = 512)
    {
        var bytes = new byte[length];
        write(bytes);
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void A_header_that_names_another_file_or_another_format_is_told_apart_from_a_plain_one()
    {
        static void Qcow2(byte[] b, ulong backingOffset, ulong incompatible)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b, 0x514649fb);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 3);
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(8), backingOffset);
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(72), incompatible);
        }

        Assert.Equal(new ImageHeader(ImageFormat.Qcow2, null, false, false), ImageHeader.Read(Header(b => Qcow2(b, 0, 0))));
        Assert.Equal(new ImageHeader(ImageFormat.Qcow2, null, true, false), ImageHeader.Read(Header(b => Qcow2(b, 0x200, 0))));
        Assert.Equal(new ImageHeader(ImageFormat.Qcow2, null, false, true), ImageHeader.Read(Header(b => Qcow2(b, 0, 4))));
        Assert.Equal(new ImageHeader(ImageFormat.Raw, null, false, false), ImageHeader.Read(Header(_ => { })));
        Assert.Equal("vmdk", ImageHeader.Read(Header(b => "KDMV"u8.CopyTo(b))).Other);
        Assert.Equal("vhdx", ImageHeader.Read(Header(b => "vhdxfile"u8.CopyTo(b))).Other);
        Assert.Equal("vdi", ImageHeader.Read(Header(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(64), 0xbeda107f))).Other);
        // A fixed VHD says so only in its footer.
        Assert.Equal("vpc", ImageHeader.Read(Header(b => "conectix"u8.CopyTo(b.AsSpan(b.Length - 512)), 4096)).Other);
        // A raw disk shorter than a header is still a raw disk.
        Assert.Equal(ImageFormat.Raw, ImageHeader.Read(Header(_ => { }, 10)).Detected);
    }

    [Theory]
    [InlineData("debian-12-genericcloud-amd64.qcow2", "debian-12-genericcloud-amd64")]
    [InlineData("Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2", "Fedora-Cloud-Base-Generic-42-1")]
    [InlineData("noble-server-cloudimg-amd64.img", "noble-server-cloudimg-amd64")]
    [InlineData("2024 my disk!.raw", "my-disk")]
    [InlineData("fedora-42.qcow2", "fedora-42-2")]
    [InlineData("---.img", null)]
    public void The_suggested_name_is_the_files_stem_made_valid_and_unused(string file, string? expected)
    {
        var name = ImportNames.Suggest(file, new HashSet<string> { "fedora-42" });
        Assert.Equal(expected, name);
        if (name is not null) Assert.Empty(QubeRules.NameProblems(name));
    }

    [Theory]
    [InlineData("debian-12-genericcloud-amd64.qcow2", "debian")]
    [InlineData("Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2", "fedora")]
    [InlineData("ubuntu-24.04-server-cloudimg-amd64.img", "ubuntu")]
    [InlineData("handmade.img", null)]
    public void The_os_family_is_guessed_from_the_file_name(string file, string? expected) =>
        Assert.Equal(expected, OsDistributions.Guess(file));
}
