namespace QubesWeb.Services.Storage;

/// <summary>
/// The names a root's files have in its qube's pool folder. Start-up recovery, the clone and create jobs and the
/// demo estate find and make them by these names, so they are said once.
/// </summary>
public static class RootFiles
{
    /// <summary>A template's or standalone's running overlay: committed as the next revision when it stops.</summary>
    public const string Dirty = "root-dirty.qcow2";

    /// <summary>An AppVM's or DispVM's overlay on its template's current revision: dropped when it stops.</summary>
    public const string Snapshot = "root-snap.qcow2";

    /// <summary>A dirty overlay qemu-img would not commit, set aside rather than deleted: its writes may still be wanted.</summary>
    public const string Rejected = "root-dirty.rejected.qcow2";

    public static string Revision(int number) => $"root.{number}.qcow2";
}
