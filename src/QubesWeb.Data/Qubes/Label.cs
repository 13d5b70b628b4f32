namespace QubesWeb.Data.Qubes;

/// <summary>A qube's colour label; labels express trust, red least trusted, black most.</summary>
public class Label
{
    /// <summary>Qubes' label index: 1 (red) to 8 (black); custom labels above 8.</summary>
    public int Id { get; set; }
    public required string Name { get; set; }
    public required string Color { get; set; }

    /// <summary>Qubes' eight labels (core-admin qubes/app.py load_initial_values).</summary>
    public static IReadOnlyList<Label> Defaults { get; } =
    [
        new() { Id = 1, Name = "red", Color = "#cc0000" },
        new() { Id = 2, Name = "orange", Color = "#f57900" },
        new() { Id = 3, Name = "yellow", Color = "#edd400" },
        new() { Id = 4, Name = "green", Color = "#73d216" },
        new() { Id = 5, Name = "gray", Color = "#555555" },
        new() { Id = 6, Name = "blue", Color = "#3465a4" },
        new() { Id = 7, Name = "purple", Color = "#75507b" },
        new() { Id = 8, Name = "black", Color = "#000000" },
    ];
}
