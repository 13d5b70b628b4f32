using QubesWeb.Services.Jobs;
using System.Globalization;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Updates;

/// <summary>Qubes' updater column "Updates available".</summary>
public enum UpdateAvailability
{
    /// <summary>The last check found updates waiting (updates-available is True).</summary>
    Yes,

    /// <summary>Never checked, or not checked for longer than UpdateOptions.StaleAfter: nobody knows.</summary>
    Maybe,

    /// <summary>Checked lately, nothing waits.</summary>
    No,
}

/// <summary>One updateable qube (a template or a standalone) as the updates page shows it.</summary>
public sealed record UpdateRow(
    string Name,
    QubeClass Class,
    string Label,
    string LabelColor,
    RunState State,
    UpdateAvailability Available,
    DateTime? LastCheckUtc,
    DateTime? LastUpdateUtc)
{
    public const string AvailableFeature = "updates-available";
    public const string LastCheckFeature = "last-updates-check";
    public const string LastUpdateFeature = "last-update";

    /// <summary>yes, maybe or no: the row's data-available.</summary>
    public string AvailableName => Available.ToString().ToLowerInvariant();

    /// <summary>The row of an updateable qube; null for the other classes, which get their software from a template.</summary>
    public static UpdateRow? Of(Qube qube, RunState state, DateTime nowUtc, TimeSpan staleAfter)
    {
        if (!qube.Updateable) return null;
        var lastCheck = ParseUtc(qube.Feature(LastCheckFeature));
        return new UpdateRow(qube.Name, qube.Class, qube.Label.Name, qube.Label.Color, state,
            AvailabilityOf(qube.Feature(AvailableFeature), lastCheck, nowUtc, staleAfter), lastCheck, ParseUtc(qube.Feature(LastUpdateFeature)));
    }

    /// <summary>
    /// YES when the last check found updates; MAYBE when there was no check, or its answer is older than
    /// <paramref name="staleAfter"/>; NO otherwise (Qubes' updater, qui/updater).
    /// </summary>
    public static UpdateAvailability AvailabilityOf(string? updatesAvailable, DateTime? lastCheckUtc, DateTime nowUtc, TimeSpan staleAfter)
    {
        if (IsTrue(updatesAvailable)) return UpdateAvailability.Yes;
        if (lastCheckUtc is null || nowUtc - lastCheckUtc.Value > staleAfter) return UpdateAvailability.Maybe;
        return UpdateAvailability.No;
    }

    /// <summary>An ISO 8601 time as the update jobs write it (UTC, ending in Z); null when missing or unreadable.</summary>
    public static DateTime? ParseUtc(string? iso) =>
        !string.IsNullOrWhiteSpace(iso) && DateTime.TryParse(iso, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? DateTime.SpecifyKind(t, DateTimeKind.Utc)
            : null;

    private static bool IsTrue(string? value) =>
        value is not null && (value.Equals("True", StringComparison.OrdinalIgnoreCase) || value == "1");
}

/// <summary>How the page reads the update jobs.</summary>
public static class UpdateJobKinds
{
    public static bool IsUpdateJob(Job job) =>
        (JobKind.Update.Is(job) || JobKind.CheckUpdates.Is(job));
}
