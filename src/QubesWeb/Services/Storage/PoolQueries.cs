namespace QubesWeb.Services.Storage;

/// <summary>The pool's filesystem as the dashboard shows it and a new copy is planned against: its size, what is free, and what instant copies will still take of it.</summary>
public sealed record PoolSpace(long TotalBytes, long FreeBytes, IReadOnlyList<PendingCopy> PendingCopies)
{
    public long PendingBytes => PendingCopies.Sum(c => c.StillToTakeBytes);

    /// <summary>What stays free once every instant copy is independent: what a new copy is planned against.</summary>
    public long FreeAfterCopiesBytes => Math.Max(0, FreeBytes - PendingBytes);
}

/// <summary>The pool's space (see <see cref="PoolSpace"/>).</summary>
public sealed class PoolQueries(RootDetach detach, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    public async Task<PoolSpace> SpaceAsync(CancellationToken ct = default)
    {
        Directory.CreateDirectory(options.Value.PoolDir);
        var drive = new DriveInfo(Path.GetFullPath(options.Value.PoolDir));
        return new PoolSpace(drive.TotalSize, drive.AvailableFreeSpace, await detach.PendingCopiesAsync(ct));
    }
}
