// The data folder is private to the console's user: every file 0600 (images, also those qemu-img and qemu-io make,
// the database and its -wal and -shm files), every folder at most 0711, and a folder left too open is narrowed at
// start.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Updates;

// The suite runs on Linux only (libvirt, qemu-img, qemu-ga): file modes are asserted without platform guards.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace QubesWeb.IntegrationTests.EstateTests;

public sealed class PrivateFilesTests
{
    private const UnixFileMode Open = (UnixFileMode)0x1ED; // 0755
    private const UnixFileMode Readable = (UnixFileMode)0x1A4; // 0644

    /// <summary>Every file or folder that another user could read, list or write, with its mode.</summary>
    private static List<string> TooOpen(string dataDir) =>
        new[] { dataDir }.Concat(Directory.EnumerateFileSystemEntries(dataDir, "*", SearchOption.AllDirectories))
            .Select(p => (Path: p, Mode: File.GetUnixFileMode(p), Folder: Directory.Exists(p)))
            .Where(e => (e.Mode & ~(e.Folder ? PrivateFiles.FolderMode : PrivateFiles.FileMode)) != 0)
            .Select(e => $"{Path.GetRelativePath(dataDir, e.Path)} {PrivateFiles.Octal(e.Mode)}").ToList();

    [Fact]
    public async Task A_fresh_data_folder_holds_only_owner_only_files_and_traverse_only_folders_after_the_demo_an_update_a_compaction_and_a_clone()
    {
        await using var host = await ConsoleHost.StartAsync();
        var pool = Path.Combine(host.DataDir, "pool");
        Assert.Empty(TooOpen(host.DataDir));
        // Images made by qemu-img and written by qemu-io, the database with its WAL: all there, all private.
        Assert.Contains(Path.Combine(host.DataDir, "qubesweb.db-wal"), Directory.GetFiles(host.DataDir));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(pool, "work"), "*.qcow2"));

        await SucceedsAsync(host, JobKind.Update, "debian-13");
        await SucceedsAsync(host, JobKind.Compact, "debian-13", new CompactRequest());
        await SucceedsAsync(host, JobKind.Clone, "dev-copy", new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "purple"));
        await SucceedsAsync(host, JobKind.Start, "dev-copy");

        Assert.Empty(TooOpen(host.DataDir));
        // Traverse for qemu's own user on a real host: the data folder, the pool and each qube's folder are 0711.
        foreach (var folder in new[] { host.DataDir, pool, Path.Combine(pool, "dev-copy"), Path.Combine(pool, "debian-13") })
            Assert.Equal(PrivateFiles.FolderMode, File.GetUnixFileMode(folder));
        foreach (var image in Directory.GetFiles(Path.Combine(pool, "dev-copy")))
            Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(image));
    }

    [Fact]
    public async Task A_data_folder_left_open_by_an_older_console_is_narrowed_at_start()
    {
        var first = await ConsoleHost.StartAsync();
        var dataDir = first.DataDir;
        await first.StopAsync();
        try
        {
            // As an older console left it: 0755 folders, 0644 files (and a stray world-writable one).
            foreach (var folder in new[] { dataDir }.Concat(Directory.GetDirectories(dataDir, "*", SearchOption.AllDirectories)))
                File.SetUnixFileMode(folder, Open);
            foreach (var file in Directory.GetFiles(dataDir, "*", SearchOption.AllDirectories))
                File.SetUnixFileMode(file, Readable);
            var stray = Path.Combine(dataDir, "pool", "work", "notes.txt");
            await File.WriteAllTextAsync(stray, "left here by hand");
            File.SetUnixFileMode(stray, (UnixFileMode)0x1B6); // 0666
            Assert.NotEmpty(TooOpen(dataDir));

            await using var second = await ConsoleHost.StartAsync(dataDir: dataDir);

            Assert.Empty(TooOpen(dataDir));
            Assert.Equal(PrivateFiles.FolderMode, File.GetUnixFileMode(Path.Combine(dataDir, "pool", "work")));
            Assert.Equal(PrivateFiles.OwnerOnlyFolderMode, File.GetUnixFileMode(Path.Combine(dataDir, "keys")));
            Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(stray));
            // The console still reads everything it narrowed: the demo's qubes are all there.
            Assert.NotNull(await second.Get<Inventory>().FindAsync("work"));
        }
        finally
        {
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public void Narrowing_reports_one_line_per_kind_of_change_and_leaves_symbolic_links_and_their_targets_alone()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var outside = dataDir + "-outside";
        try
        {
            Directory.CreateDirectory(Path.Combine(dataDir, "pool", "work"));
            Directory.CreateDirectory(Path.Combine(dataDir, "keys"));
            Directory.CreateDirectory(outside);
            foreach (var f in new[] { "qubesweb.db", "pool/work/private.qcow2", "pool/work/volatile.qcow2" })
                File.WriteAllText(Path.Combine(dataDir, f), "");
            foreach (var d in new[] { dataDir, Path.Combine(dataDir, "pool"), Path.Combine(dataDir, "pool", "work"), Path.Combine(dataDir, "keys") })
                File.SetUnixFileMode(d, Open);
            foreach (var f in Directory.GetFiles(dataDir, "*", SearchOption.AllDirectories)) File.SetUnixFileMode(f, Readable);
            File.SetUnixFileMode(outside, Open);
            Directory.CreateSymbolicLink(Path.Combine(dataDir, "pool", "elsewhere"), outside);

            var changes = PrivateFiles.Tighten(dataDir, [Path.Combine(dataDir, "keys")]);

            Assert.Equal(
            [
                "1 folder(s) from 0755 to 0700: keys",
                "3 file(s) from 0644 to 0600: pool/work/private.qcow2, pool/work/volatile.qcow2, qubesweb.db",
                "3 folder(s) from 0755 to 0711: ., pool, pool/work",
            ], PrivateFiles.Describe(dataDir, changes).Order(StringComparer.Ordinal));
            Assert.Equal(Open, File.GetUnixFileMode(outside));
            Assert.Empty(PrivateFiles.Tighten(dataDir, [Path.Combine(dataDir, "keys")]));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
            Directory.Delete(outside, recursive: true);
        }
    }
}
