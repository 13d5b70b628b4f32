// A revision file whose header names a backing file outside the pool (/etc/shadow) or a json: description: the
// console must not open it for a start, a clone or a compaction, must say why, and must write nothing.
using System.Security.Cryptography;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.TemplateTests;

public sealed class UnsafeImageTests
{
    public static TheoryData<string, string[], string> Crafted => new()
    {
        // what, qemu-img create's backing arguments, what the refusal says about it
        { "a host file", ["-b", "/etc/shadow", "-F", "raw"], "its backing file '/etc/shadow' is outside the console's pool" },
        { "a json: description", ["-u", "-b", "json:{\"driver\":\"file\",\"filename\":\"/etc/shadow\"}", "-F", "raw"],
            "it names its backing file by a protocol or a json: description ('json:{\"driver\":\"file\",\"filename\":\"/etc/shadow\"}')" },
        { "a protocol", ["-u", "-b", "nbd:127.0.0.1:1", "-F", "raw"], "it names its backing file by a protocol or a json: description ('nbd:127.0.0.1:1')" },
        { "a format other than qcow2 or raw", ["-u", "-b", "root.1.qcow2", "-F", "vmdk"], "it names its backing file's format 'vmdk'; only qcow2 and raw are opened" },
    };

    [Theory]
    [MemberData(nameof(Crafted))]
    public async Task A_template_revision_whose_backing_chain_leaves_the_pool_is_refused_for_start_clone_and_compaction_and_nothing_is_written(
        string what, string[] backing, string reason)
    {
        await using var host = await ConsoleHost.StartAsync();
        var history = (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!;
        var folder = Path.Combine(host.DataDir, "pool", "debian-13");
        var revision = Path.Combine(folder, RootFiles.Revision(history.Current));
        // The crafted image takes the current revision's place, as a tampered or imported file would.
        File.Delete(revision);
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["create", "-q", "-f", "qcow2", .. backing, "--", revision, "64M"]);
        var shadow = Hash("/etc/shadow");
        var revisionBytes = Hash(revision);
        var filesBefore = Files(host.DataDir);

        var start = await RunAsync(host, JobKind.Start, "debian-13");
        Assert.Equal(JobState.Failed, start.State);
        Assert.Contains($"Refused to open the image {revision}: {reason}", start.Error);
        Assert.Contains("The console opens only images whose whole backing chain is plain qcow2 or raw files in its pool; nothing was read through it or written.", start.Error);

        var compact = await RunAsync(host, JobKind.Compact, "debian-13", new CompactRequest());
        Assert.Equal(JobState.Failed, compact.State);
        Assert.Contains(reason, compact.Error);

        var clone = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Clone, "copied",
            new CloneRequest(QubeClass.StandaloneVM, "debian-13", "red"), CancellationToken.None));
        Assert.StartsWith("debian-13's root cannot be copied. Refused to open the image", clone.Message);
        Assert.Contains(reason, clone.Message);

        Assert.Equal(filesBefore, Files(host.DataDir));
        Assert.Equal(revisionBytes, Hash(revision));
        Assert.Equal(shadow, Hash("/etc/shadow"));
        Assert.Null(await host.Get<Inventory>().FindAsync("copied"));
        Assert.Equal(history.Current, (await host.Get<RootRevisions>().HistoryAsync("debian-13"))!.Current);
        _ = what;
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>Every file and folder under the data folder but the database's own files, which change with every job.</summary>
    private static SortedSet<string> Files(string dataDir) =>
        new(Directory.EnumerateFileSystemEntries(dataDir, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetFileName(p).StartsWith("qubesweb.db", StringComparison.Ordinal)), StringComparer.Ordinal);
}
