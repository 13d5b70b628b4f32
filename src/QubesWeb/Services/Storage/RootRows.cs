using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.Services.Storage;

/// <summary>How the root services read and write a root's inventory rows, so they all say a missing root alike.</summary>
internal static class RootRows
{
    public static async Task<Volume> RootOfAsync(InventoryDbContext db, string name, CancellationToken ct) =>
        await db.Volumes.Include(v => v.Revisions)
            .FirstOrDefaultAsync(v => v.Kind == VolumeKind.Root && v.CurrentRevision != null && db.Qubes.Any(q => q.Id == v.QubeId && q.Name == name), ct)
        // A name no qube has is said as such, not as a qube without a root of its own.
        ?? throw (await db.Qubes.AnyAsync(q => q.Name == name, ct)
            ? new QubeRuleException($"'{QubeRules.Shown(name)}' has no root of its own with revisions (only templates and standalones do).")
            : QubeRuleException.NoQube(name));

    public static void SetOverlay(Volume v, int? sourceVolumeId, int? revision)
    {
        v.OverlaySourceVolumeId = sourceVolumeId;
        v.OverlayRevision = revision;
        v.OverlayCreatedUtc = sourceVolumeId is null ? null : DateTime.UtcNow;
    }

    /// <summary>A revision's own host bytes; 0 when qemu-img cannot read it (the disk usage timer measures it again).</summary>
    public static async Task<long> SizeOfAsync(string path)
    {
        try { return (await QemuImg.InfoAsync(path)).ActualSizeBytes; }
        catch (ProcessFailedException) { return 0; }
    }

    /// <summary>A revision's reason fits its column.</summary>
    public static string Shorten(string s) => s.Length <= 200 ? s : s[..197] + "...";
}
