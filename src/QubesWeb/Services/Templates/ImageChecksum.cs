using System.Security.Cryptography;
using System.Text.RegularExpressions;
using QubesWeb.Data.Qubes;

namespace QubesWeb.Services.Templates;

public enum ChecksumAlgorithm
{
    Sha256,
    Sha512,
}

/// <summary>
/// The digest an image must have, as the user typed it or as a checksum file beside the image lists it (Debian's
/// <c>SHA512SUMS</c>, Ubuntu's <c>SHA256SUMS</c>, Fedora's <c>*-CHECKSUM</c>). A checksum file is trusted as much as
/// the image next to it: the console does not check its signature, so the user who downloaded both checks that.
/// </summary>
/// <param name="Source">Where the digest came from, for the log: "typed" or the checksum file's path.</param>
public sealed partial record ImageChecksum(ChecksumAlgorithm Algorithm, string Hex, string Source)
{
    /// <summary>Checksum files are small; a larger file named like one is not read.</summary>
    private const long MaxSumsFileBytes = 1 << 20;

    public string AlgorithmName => Algorithm == ChecksumAlgorithm.Sha256 ? "SHA-256" : "SHA-512";

    /// <summary>
    /// A digest as a user pastes it: bare hex (64 digits: SHA-256, 128: SHA-512), with a <c>sha256:</c> or
    /// <c>sha512:</c> prefix, or a whole line of <c>sha256sum</c> (<c>HEX  FILE</c>) or BSD style (<c>SHA256 (FILE) = HEX</c>).
    /// </summary>
    public static ImageChecksum Parse(string text)
    {
        var t = text.Trim();
        var m = Typed().Match(t);
        if (!m.Success)
            throw new QubeRuleException("The checksum is not a SHA-256 (64 hexadecimal digits) or SHA-512 (128 digits); paste what sha256sum or sha512sum prints for the image, or leave it empty to use a SHA256SUMS or SHA512SUMS file next to the image.");
        var hex = m.Groups["hex"].Value.ToLowerInvariant();
        var algorithm = hex.Length == 64 ? ChecksumAlgorithm.Sha256 : ChecksumAlgorithm.Sha512;
        var named = m.Groups["alg"].Value.ToLowerInvariant();
        if (named.Length > 0 && named != (algorithm == ChecksumAlgorithm.Sha256 ? "sha256" : "sha512"))
            throw new QubeRuleException($"The checksum says {named.ToUpperInvariant()} but has {hex.Length} digits; a SHA-256 has 64 and a SHA-512 has 128.");
        return new ImageChecksum(algorithm, hex, "typed");
    }

    /// <summary>
    /// The digest a checksum file in the image's folder lists for it (SHA-512 preferred), or null when none lists it.
    /// </summary>
    public static ImageChecksum? FindBeside(string imagePath)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(imagePath))!;
        var name = Path.GetFileName(imagePath);
        ImageChecksum? found = null;
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(folder).Where(f => SumsFileName().IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        foreach (var file in candidates)
        {
            var info = new FileInfo(file);
            if (info.Length > MaxSumsFileBytes) continue;
            foreach (var line in File.ReadLines(file))
            {
                if (Entry(line, name) is not { } hex) continue;
                var candidate = new ImageChecksum(hex.Length == 64 ? ChecksumAlgorithm.Sha256 : ChecksumAlgorithm.Sha512, hex.ToLowerInvariant(), file);
                if (found is null || (found.Algorithm == ChecksumAlgorithm.Sha256 && candidate.Algorithm == ChecksumAlgorithm.Sha512))
                    found = candidate;
                break;
            }
        }
        return found;
    }

    /// <summary>The hex digest a checksum file's line gives for <paramref name="fileName"/>, in GNU or BSD style.</summary>
    private static string? Entry(string line, string fileName)
    {
        var gnu = GnuLine().Match(line);
        if (gnu.Success && gnu.Groups["file"].Value == fileName) return gnu.Groups["hex"].Value;
        var bsd = BsdLine().Match(line);
        if (bsd.Success && bsd.Groups["file"].Value == fileName) return bsd.Groups["hex"].Value;
        return null;
    }

    /// <summary>
    /// Reads the whole file and returns its digest in lower-case hex, reporting the share read so far (0 to 1).
    /// </summary>
    public static async Task<string> ComputeAsync(string path, ChecksumAlgorithm algorithm, Action<double>? progress, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(algorithm == ChecksumAlgorithm.Sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA512);
        await using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var length = f.Length;
        // The whole file is asked for at once: the disk then reads at its own pace ahead of the digest, which is the
        // slower of the two (SHA-256 about 1.2 GB/s here, SHA-512 about 0.45 GB/s), so the read costs no time of its own.
        QubesWeb.Hypervisor.Storage.ReadAhead.Hint(f.SafeFileHandle, 0, length);
        var buffer = new byte[4 << 20];
        long done = 0;
        // The next block is read while this one is hashed: the disk and the CPU work at once.
        var pending = f.ReadAsync(buffer.AsMemory(0, buffer.Length / 2), ct).AsTask();
        var half = 0;
        while (true)
        {
            var n = await pending;
            if (n == 0) break;
            var current = buffer.AsMemory(half * (buffer.Length / 2), n);
            half ^= 1;
            pending = f.ReadAsync(buffer.AsMemory(half * (buffer.Length / 2), buffer.Length / 2), ct).AsTask();
            hash.AppendData(current.Span);
            done += n;
            if (length > 0) progress?.Invoke((double)done / length);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    [GeneratedRegex(@"\A(?:(?<alg>sha256|sha512)\s*[:=]\s*)?(?<hex>[0-9a-fA-F]{128}|[0-9a-fA-F]{64})(?:\s+\*?\S.*)?\z|\A(?<alg>sha256|sha512)\s*\(.+\)\s*=\s*(?<hex>[0-9a-fA-F]{128}|[0-9a-fA-F]{64})\z", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex Typed();

    [GeneratedRegex(@"\A(?<hex>[0-9a-fA-F]{128}|[0-9a-fA-F]{64}) [ *](?<file>.+?)\s*\z")]
    private static partial Regex GnuLine();

    [GeneratedRegex(@"\A(?:SHA256|SHA512) \((?<file>.+)\) = (?<hex>[0-9a-fA-F]{128}|[0-9a-fA-F]{64})\s*\z")]
    private static partial Regex BsdLine();

    [GeneratedRegex(@"\A(?:SHA(?:256|512)SUMS(?:\.txt)?|sha(?:256|512)sums?(?:\.txt)?|.*-CHECKSUM|CHECKSUMS?)\z")]
    private static partial Regex SumsFileName();
}
