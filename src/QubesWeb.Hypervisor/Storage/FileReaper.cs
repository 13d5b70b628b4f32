using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace QubesWeb.Hypervisor.Storage;

/// <summary>
/// Deletes image files off the caller's path. Unlinking a big file frees all its extents before it returns, and on a
/// filesystem mounted with <c>discard</c> (this kind of machine's ext4) that takes about half a second per 512 MiB
/// layer: a compaction that lets go of a few old layers spent twice its copy's time deleting them. A file is first
/// renamed aside in its own folder (one atomic step, after which it is no longer any revision's file), then unlinked
/// by one background worker a moment later, one file at a time so the deletes do not crowd the disk. A file a process stopped
/// before unlinking keeps its suffix and goes at the next start (<see cref="Sweep"/>).
/// </summary>
public static partial class FileReaper
{
    public const string Suffix = ".retired";

    private static readonly Channel<(string Path, long At)> Queue = Channel.CreateUnbounded<(string, long)>(new() { SingleReader = true });

    /// <summary>
    /// How long a file waits before its unlink: the job that let go of it usually still has its last inventory writes
    /// to make, and each waits for an fsync that would otherwise queue behind the unlink's discards.
    /// </summary>
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);
    private static readonly Lock Gate = new();
    private static int _pending;
    private static TaskCompletionSource _idle = Done();
    private static Task? _worker;

    /// <summary>Lets go of <paramref name="path"/> now and of its space shortly after. A missing file is no error.</summary>
    public static void Retire(string path)
    {
        var aside = AsideName(path);
        try
        {
            File.Move(path, aside);
        }
        catch (FileNotFoundException) { return; }
        catch (DirectoryNotFoundException) { return; }
        Enqueue(aside);
    }

    /// <summary>
    /// Renames <paramref name="from"/> over <paramref name="to"/> atomically and durably, like
    /// <see cref="Durable.Rename"/>, but the file it replaces is unlinked later instead of inside the rename: it is
    /// first linked aside. Where no hard link can be made, the rename frees it at once, as a plain rename would.
    /// </summary>
    public static void RenameOver(string from, string to)
    {
        string? aside = null;
        if (File.Exists(to) && OperatingSystem.IsLinux())
        {
            var candidate = AsideName(to);
            if (Link(to, candidate) == 0) aside = candidate;
        }
        try
        {
            Durable.Rename(from, to);
        }
        catch
        {
            if (aside is not null) File.Delete(aside); // the rename did not happen: `to` still holds the file
            throw;
        }
        if (aside is not null) Enqueue(aside);
    }

    /// <summary>Completes once every file retired so far is unlinked (tests and benchmarks wait on this, not on a clock).</summary>
    public static Task IdleAsync()
    {
        lock (Gate) return _idle.Task;
    }

    /// <summary>Unlinks what a stopped process left retired under <paramref name="folder"/>; returns how many.</summary>
    public static int Sweep(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        var n = 0;
        foreach (var f in Directory.EnumerateFiles(folder, "*" + Suffix, SearchOption.AllDirectories))
        {
            File.Delete(f);
            n++;
        }
        return n;
    }

    private static string AsideName(string path) => $"{path}.{Guid.NewGuid():N}{Suffix}";

    private static void Enqueue(string aside)
    {
        lock (Gate)
        {
            if (_pending++ == 0) _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _worker ??= Task.Run(WorkAsync);
        }
        Queue.Writer.TryWrite((aside, Environment.TickCount64));
    }

    private static async Task WorkAsync()
    {
        await foreach (var (path, at) in Queue.Reader.ReadAllAsync())
        {
            var wait = at + (long)Settle.TotalMilliseconds - Environment.TickCount64;
            if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait));
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Its folder went (a test's data folder, a removed qube) or it cannot be unlinked now: the next
                // start's sweep retries what is left; nothing reads a retired file.
            }
            lock (Gate)
            {
                if (--_pending == 0) _idle.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource Done()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string created);
}
