using System.Globalization;

namespace QubesWeb.Services;

public static class Format
{
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var i = 0;
        while (v >= 1024 && i < units.Length - 1) { v /= 1024; i++; }
        return i == 0 ? $"{bytes} B" : v.ToString(v < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " " + units[i];
    }

    /// <summary>The exact local time with its offset: the hover text of every relative time.</summary>
    public static string FullTime(DateTime? utc) => utc is null ? ""
        : DateTime.SpecifyKind(utc.Value, DateTimeKind.Utc).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);

    public static string Ago(DateTime? utc)
    {
        if (utc is null) return "";
        var d = DateTime.UtcNow - utc.Value;
        return d.TotalSeconds < 60 ? $"{Math.Max(0, (int)d.TotalSeconds)} s ago"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes} min ago"
            : d.TotalHours < 24 ? $"{(int)d.TotalHours} h ago"
            : utc.Value.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
    }
}
