// Templates imported from images on dom0's disk by the real console on its embedded demo, with real qcow2 and raw
// files made here: the digest checked first (typed, or from a checksum file beside the image), the root equal to the
// image, refusals that name what to fix with nothing written, and a failure or cancel leaving nothing behind.
using System.Security.Cryptography;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.Templates;

public sealed class ImportTemplateTests
{
    private const long MiB = 1L << 20, GiB = 1L << 30;

    /// <summary>A folder of images outside the pool, in the test's own data folder.</summary>
    private static string Images(ConsoleHost host)
    {
        var dir = Path.Combine(host.DataDir, "images");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A qcow2 image of <paramref name="virtualBytes"/> bytes with <paramref name="dataMiB"/> MiB of a pattern at 1 MiB.</summary>
    private static async Task<string> QcowAsync(ConsoleHost host, string name, long virtualBytes, long dataMiB)
    {
        var path = Path.Combine(Images(host), name);
        await QemuImg.CreateAsync(path, virtualBytes);
        if (dataMiB > 0) await QemuImg.WritePatternAsync(path, 0x5a, MiB, dataMiB * MiB);
        return path;
    }

    private static string Sha(string path, bool sha512 = false)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(sha512 ? SHA512.HashData(f) : SHA256.HashData(f));
    }

    private static async Task<bool> SameDataAsync(string a, string aFormat, string b) =>
        (await ProcessRunner.RunAsync(QemuImg.QemuImgPath, ["compare", "-U", "-q", "-f", aFormat, "-F", "qcow2", "--", a, b])).ExitCode == 0;

    private static async Task AssertNothingLeftAsync(ConsoleHost host, string name)
    {
        Assert.Null(await host.Get<InventoryService>().FindAsync(name));
        Assert.Null(host.Get<IHypervisor>().GetDomain(name));
        var dir = Path.Combine(host.PoolDir, name);
        Assert.False(Directory.Exists(dir), $"{dir} is left behind");
    }

    private static Task<Exception> RefusedAsync(ConsoleHost host, string name, ImportTemplateRequest request) =>
        Assert.ThrowsAsync<QubeRuleException>(() => host.Get<TemplateCommands>().ImportAsync(name, request)).ContinueWith(t => (Exception)t.Result);

    [Fact]
    public async Task A_qcow2_image_listed_in_a_SHA512SUMS_file_beside_it_becomes_a_template_whose_root_is_the_image()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = await QcowAsync(host, "debian-12-genericcloud-amd64.qcow2", 2 * GiB, 24);
        // Debian publishes SHA512SUMS in GNU style, listing several images.
        await File.WriteAllTextAsync(Path.Combine(Images(host), "SHA512SUMS"),
            $"{new string('0', 128)}  debian-12-nocloud-amd64.qcow2\n{Sha(image, sha512: true)}  debian-12-genericcloud-amd64.qcow2\n");

        var plan = await host.Get<TemplateCommands>().PlanImportAsync(new ImportTemplateRequest(image, "black", "debian"));
        Assert.Equal(ImageFormat.Qcow2, plan.Format);
        Assert.Equal(2 * GiB, plan.VirtualSizeBytes);
        Assert.Equal(ChecksumAlgorithm.Sha512, plan.Checksum.Algorithm);
        Assert.Equal(Path.Combine(Images(host), "SHA512SUMS"), plan.Checksum.Source);

        var job = await RunAsync(host, JobKind.Import, "debian-12", new ImportTemplateRequest(image, "black", "debian", RootSizeBytes: 10 * GiB));

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.Contains(job.Log, l => l.Text == "SHA-512 matches.");
        var qube = await host.Get<InventoryService>().GetAsync("debian-12");
        Assert.Equal(QubeClass.TemplateVM, qube.Class);
        Assert.Equal("debian", qube.Feature("os-distribution"));
        Assert.Equal(new QubeMetadata("TemplateVM", "black", null), host.Get<IHypervisor>().GetMetadata("debian-12"));
        var root = Path.Combine(host.PoolDir, "debian-12", RootFiles.Revision(1));
        var chain = await QemuImg.ChainAsync(root);
        Assert.Single(chain);
        Assert.Equal(10 * GiB, chain[0].VirtualSizeBytes);
        Assert.True(await SameDataAsync(image, "qcow2", root));
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-12"))!;
        Assert.StartsWith($"Imported from {image} (SHA-512 ", history.Revisions.Single().Reason);
        Assert.False(File.Exists(root + ".part"));

        // An AppVM can be based on it and start on its root.
        await SucceedsAsync(host, JobKind.Create, "on-debian-12", new Services.Qubes.CreateQubeRequest(QubeClass.AppVM, "red", "debian-12", null));
        await SucceedsAsync(host, JobKind.Start, "on-debian-12");
        Assert.Equal(root, (await QemuImg.ChainAsync(Path.Combine(host.PoolDir, "on-debian-12", RootFiles.Snapshot)))[1].Path);
    }

    [Fact]
    public async Task A_raw_image_with_a_typed_SHA256_is_imported_as_raw()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = Path.Combine(Images(host), "handmade.img");
        await using (var f = new FileStream(image, FileMode.CreateNew))
        {
            f.SetLength(64 * MiB);
            f.Seek(8 * MiB, SeekOrigin.Begin);
            f.Write(RandomNumberGenerator.GetBytes((int)MiB));
        }

        var job = await RunAsync(host, JobKind.Import, "handmade", new ImportTemplateRequest(image, "green", "other", $"sha256:{Sha(image).ToUpperInvariant()}"));

        Assert.True(job.State == JobState.Succeeded, job.Error);
        Assert.True(await SameDataAsync(image, "raw", Path.Combine(host.PoolDir, "handmade", RootFiles.Revision(1))));
        Assert.Contains(job.Log, l => l.Text.StartsWith($"{image}: raw, 64 MiB virtual", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_wrong_checksum_fails_the_job_before_anything_is_written_and_names_both_digests()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = await QcowAsync(host, "fedora.qcow2", GiB, 8);
        var wrong = new string('a', 64);

        var job = await RunAsync(host, JobKind.Import, "fedora-cloud", new ImportTemplateRequest(image, "black", "fedora", wrong));

        Assert.Equal(JobState.Failed, job.State);
        Assert.Equal($"The image's SHA-256 is {Sha(image)}, but the one given says {wrong}: it is not the image published under that checksum (a damaged or other file). Nothing was written.", job.Error);
        await AssertNothingLeftAsync(host, "fedora-cloud");
        // The pool never had a folder for it: the check came first.
        Assert.DoesNotContain(job.Log, l => l.Text.StartsWith("Removing what this job made", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_BSD_style_CHECKSUM_file_is_read_and_its_mismatch_is_named()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = await QcowAsync(host, "Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2", GiB, 4);
        var sums = Path.Combine(Images(host), "Fedora-Cloud-42-1.1-x86_64-CHECKSUM");
        await File.WriteAllTextAsync(sums, $"# Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2: 1 bytes\nSHA256 (Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2) = {new string('b', 64)}\n");

        var job = await RunAsync(host, JobKind.Import, "fedora-42-cloud", new ImportTemplateRequest(image, "black", "fedora"));

        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains($"but {sums} says {new string('b', 64)}", job.Error);
        await AssertNothingLeftAsync(host, "fedora-42-cloud");
    }

    [Fact]
    public async Task Images_the_console_will_not_open_are_refused_before_anything_is_queued_saying_what_to_fix()
    {
        await using var host = await ConsoleHost.StartAsync();
        var dir = Images(host);
        var good = await QcowAsync(host, "good.qcow2", GiB, 1);
        var sha = Sha(good);
        // An overlay whose backing file is outside everything the console owns: it must not be opened, even by qemu-img info.
        var secret = Path.Combine(dir, "secret.raw");
        await File.WriteAllBytesAsync(secret, new byte[MiB]);
        var overlay = Path.Combine(dir, "overlay.qcow2");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", "--", overlay]);
        var external = Path.Combine(dir, "external.qcow2");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["create", "-q", "-f", "qcow2", "-o", $"data_file={Path.Combine(dir, "external.data")}", "--", external, "64M"]);
        var vmdk = Path.Combine(dir, "appliance.vmdk");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["create", "-q", "-f", "vmdk", "--", vmdk, "64M"]);
        var inPool = Path.Combine(host.PoolDir, "fedora-42", RootFiles.Revision(1));

        (string Path, string? Checksum, ImageFormat? Format, string Expected)[] cases =
        [
            ("", sha, null, "Give the image file's full path on dom0"),
            ("images/good.qcow2", sha, null, "'images/good.qcow2' is not an absolute path"),
            (Path.Combine(dir, "missing.qcow2"), sha, null, $"There is no file {Path.Combine(dir, "missing.qcow2")}."),
            (dir, sha, null, $"{dir} is a folder"),
            (overlay, sha, null, $"{overlay} has a backing file: it is an overlay, not a whole image."),
            (external, sha, null, $"{external} keeps its data in an external data file"),
            (vmdk, sha, null, $"{vmdk} is a vmdk image; the console imports qcow2 and raw."),
            (inPool, sha, null, $"{inPool} is in the console's pool"),
            (good, null, null, $"none in {dir} lists good.qcow2"),
            (good, "12345", null, "The checksum is not a SHA-256 (64 hexadecimal digits) or SHA-512 (128 digits)"),
            (good, "sha512:" + sha, null, "The checksum says SHA512 but has 64 digits"),
            (good, sha, ImageFormat.Raw, $"{good} has a qcow2 header; import it as qcow2"),
        ];
        foreach (var (path, checksum, format, expected) in cases)
        {
            var e = await RefusedAsync(host, "imported", new ImportTemplateRequest(path, "black", "debian", checksum, format));
            Assert.Contains(expected, e.Message);
        }
        Assert.Contains("already exists", (await RefusedAsync(host, "fedora-42", new ImportTemplateRequest(good, "black", "debian", sha))).Message);
        Assert.Contains("There is no OS family 'windows'", (await RefusedAsync(host, "imported", new ImportTemplateRequest(good, "black", "windows", sha))).Message);
        Assert.Contains("The root cannot be smaller than the image (", (await RefusedAsync(host, "imported", new ImportTemplateRequest(good, "black", "debian", sha, RootSizeBytes: 512 * MiB))).Message);
        Assert.Contains("Invalid name", (await RefusedAsync(host, "--helpVM", new ImportTemplateRequest(good, "black", "debian", sha))).Message);

        await AssertNothingLeftAsync(host, "imported");
        Assert.DoesNotContain(await host.Get<JobEngine>().RecentAsync(50), j => JobKind.Import.Is(j));
    }

    [Fact]
    public async Task Cancelled_during_the_conversion_it_leaves_no_file_row_or_domain()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = await QcowAsync(host, "big.qcow2", 4 * GiB, 1024);
        var jobs = host.Get<JobEngine>();
        var job = await host.Get<TemplateCommands>().ImportAsync("cancelled", new ImportTemplateRequest(image, "black", "debian", Sha(image)));
        await Eventually.UntilAsync(async () => ((await jobs.GetAsync(job.Id))!.Step ?? "").StartsWith("Converting the image into the pool:", StringComparison.Ordinal),
            "the conversion to report progress");

        Assert.True(await jobs.CancelAsync(job.Id));

        Assert.Equal(JobState.Cancelled, (await FinishedAsync(host, job.Id)).State);
        await AssertNothingLeftAsync(host, "cancelled");
    }

    [Fact]
    public async Task A_disk_that_fills_up_during_the_conversion_fails_the_job_cleanly()
    {
        await using var host = await ConsoleHost.StartAsync();
        var image = await QcowAsync(host, "large.qcow2", GiB, 64);
        var dir = Path.Combine(host.PoolDir, "too-big");
        Directory.CreateDirectory(dir);
        await ProcessRunner.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", "size=16M", "tmpfs", dir]);
        try
        {
            var job = await RunAsync(host, JobKind.Import, "too-big", new ImportTemplateRequest(image, "black", "debian", Sha(image)));

            Assert.Equal(JobState.Failed, job.State);
            Assert.Contains("No space left on device", job.Error);
            Assert.Null(await host.Get<InventoryService>().FindAsync("too-big"));
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync("umount", [dir]);
        }
    }
}
